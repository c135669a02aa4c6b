-- lk_normalized + lk_bloom -> lk_tokens: keyed tokens only (no clear identifier but sex).
-- lk_hmac(field | value): first 60 bits of HMAC-SHA256 under the linkage key, NULL for NULL input.
-- Field prefixes keep equal values of different fields apart; family and maiden share the prefix
-- 'family' so that one record's maiden name can agree with another's family name.
-- k_*: combinations for blocking and the deterministic rules (NULL when any part is missing).
CREATE OR REPLACE TEMP TABLE lk_tokens AS
SELECT
    n.record_id, n.source_system, n.source_person_id, n.batch_id, n.sex,
    lk_hmac('given|' || n.given) AS t_given,
    lk_hmac('first|' || n.given_first) AS t_given_first,
    list_transform(n.given_forms, f -> lk_hmac('first|' || f)) AS t_given_forms,
    lk_hmac('family|' || n.family) AS t_family,
    lk_hmac('family|' || n.other_family) AS t_maiden,
    lk_hmac('dob|' || strftime(n.dob, '%Y-%m-%d')) AS t_dob,
    lk_hmac('dob|' || strftime(lk_swapped(n.dob), '%Y-%m-%d')) AS t_dob_swap,
    lk_hmac('ym|' || strftime(n.dob, '%Y-%m')) AS t_ym,
    lk_hmac('year|' || CAST(year(n.dob) AS VARCHAR)) AS t_yob,
    lk_hmac('ssn|' || n.ssn) AS t_ssn,
    lk_hmac('phone|' || n.phone) AS t_phone,
    lk_hmac('street|' || n.street) AS t_street,
    lk_hmac('zip|' || n.zip) AS t_zip,
    lk_hmac('city|' || n.city) AS t_city,
    lk_hmac('k_name_dob|' || n.given_canon || '|' || n.family || '|' || strftime(n.dob, '%Y-%m-%d')) AS k_name_dob,
    lk_hmac('k_ssn_dob|' || n.ssn || '|' || strftime(n.dob, '%Y-%m-%d')) AS k_ssn_dob,
    lk_hmac('k_given_dob_zip|' || n.given_canon || '|' || strftime(n.dob, '%Y-%m-%d') || '|' || n.zip)
        AS k_given_dob_zip,
    lk_hmac('k_name_yob|' || n.given_canon || '|' || n.family || '|' || CAST(year(n.dob) AS VARCHAR)) AS k_name_yob,
    CAST(bg.bits AS BLOB) AS bf_given,
    CAST(bf.bits AS BLOB) AS bf_family,
    CAST(bs.bits AS BLOB) AS bf_street
FROM lk_normalized n
LEFT JOIN lk_bloom bg ON bg.field = 'given' AND bg.value = n.given
LEFT JOIN lk_bloom bf ON bf.field = 'family' AND bf.value = n.family
LEFT JOIN lk_bloom bs ON bs.field = 'street' AND bs.value = n.street
