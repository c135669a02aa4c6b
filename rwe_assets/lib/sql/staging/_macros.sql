-- Macros shared by every staging profile, created before the profile's own _macros.sql
-- (lib/staging/sql_templates.py profile_macros; lib/staging/build.py creates the rwe_* basics they use).
--
-- rwe_period_failure(start_field, start_text[, end_field, end_text]): INVALID_DATE when the start
--   is missing, blank or does not parse; INVALID_DATE when an end is given but does not parse;
--   END_BEFORE_START when the end is before the start. A record without an end leaves end_field and
--   end_text out. Returns the first failing check as {reason, field, failed}, or NULL.
CREATE OR REPLACE MACRO rwe_period_failure(start_field, start_text, end_field := NULL, end_text := NULL) AS
    rwe_first_failure([
        {'reason': 'INVALID_DATE', 'field': start_field, 'failed': rwe_ts(start_text) IS NULL},
        {'reason': 'INVALID_DATE', 'field': end_field, 'failed': rwe_bad_ts(end_text)},
        {'reason': 'END_BEFORE_START', 'field': end_field, 'failed': rwe_ts_end(start_text, end_text) < rwe_ts(start_text)}
    ]);

-- rwe_amount_failure(field, x): a money amount (NULL when blank) that is not a number is INVALID_NUMBER,
--   one below 0 NEGATIVE_AMOUNT; returns the failure as rwe_period_failure does, or NULL.
CREATE OR REPLACE MACRO rwe_amount_failure(field, x) AS rwe_first_failure([
    {'reason': 'INVALID_NUMBER', 'field': field, 'failed': rwe_bad_num(x)},
    {'reason': 'NEGATIVE_AMOUNT', 'field': field, 'failed': rwe_num(x) < 0}
]);
