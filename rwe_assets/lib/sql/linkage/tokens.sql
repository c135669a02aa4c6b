-- lk_normalized + lk_bloom -> lk_tokens: keyed tokens only (no clear identifier but sex).
-- lk_hmac(field | value): first 60 bits of HMAC-SHA256 under the linkage key, NULL for NULL input.
-- Field prefixes keep equal values of different fields apart; given, family and maiden names share
-- the prefix 'name' so that names swapped between the fields, or one record's maiden name and
-- another's family name, can agree.
-- t_given_near, t_family_near: tokens of the names of this run one edit apart (sharing a member of
-- their deletion neighbourhoods, lk_deletions), for the "one edit apart" levels. They depend on the
-- other names present, so they are left out of the record's fingerprint; every run recomputes them.
-- Birth dates: the date, the day/month-swapped date, the date with each of its eight digits masked
-- (position i of t_dob_digit: a one-digit typo there), year-month and the neighbouring months, year;
-- t_ydate, the token of 1 January of its year (a date equal to it may be a year-only date).
-- Tokens of values that repeat (names, cities, ZIPs, dates) are computed once per distinct value.
-- t_yband: tokens of the birth year's two overlapping ten-year bands (year // 10 and (year + 5) // 10):
-- years up to 4 apart share one, years 10 or more apart none (the household guard: a mistyped year is
-- not a Jr./Sr.). t_given_letters: keyed deletion neighbourhood of the given name's letters sorted, so
-- names of the same letters in another order, up to one letter more or less, share a member (the
-- household guard: a scrambled name is no other family member's).
-- k_*: combinations for blocking and the deterministic rules, a 60-bit hash of the parts' keyed
-- tokens (NULL when any part is missing): as secret as the tokens, without another HMAC per record.
-- k_dob_init / k_dob_swap_init: birth date (or its day/month swap) with the call name's initial;
-- k_names: call name (nicknames folded) and family name; k_sdx_init: Soundex of the family name and
-- the call name's initial; k_dob: the birth date alone; k_family_city, k_given_city: one name and the
-- city; k_sdx_yob: Soundex of the family name and the birth year; k_given_yob, k_family_yob: one name
-- and the birth year (one hash for both fields, so a name in the other field still meets it; the
-- same for the name + city keys);
-- k_zip_family: postcode and family name; k_zip_init: postcode and the call name's initial.
-- k_gf_near, k_city_near, k_zip_near: lists of the keys given + family name, a name + city, postcode
-- + a name, each name as written and replaced by every name of this run one edit apart
-- (t_given_near, t_family_near), so two records meet when one name has a typo; a member more than
-- $cap records hold is left out. t_email_near: the keyed deletion neighbourhood of the email (one
-- character wrong, added, dropped or two neighbours swapped), without the members more than $cap
-- records share. The scalar k_* keys are capped by frequency afterwards (tokens.py, cap_keys).
-- Identifiers (lk_normalized.ids): tokens that agree only within one type and system. A value's token B
-- (keyed type and value) and its system's token S combine as hash(B, S). Each record has an `offer` and
-- an `accept` list; two records agree when one's offer meets the other's accept. An identifier with a
-- system offers and accepts hash(B, S); a document also offers B, and a document without a system offers
-- and accepts B: so a number of one issuer never agrees with the same number of another issuer, and a
-- document whose issuer is unknown agrees with the same number of any issuer. t_id_*: the values;
-- t_idnear_*: their deletion neighbourhoods (lk_deletions, values of up to 20 characters), keyed before
-- combining: one character wrong, added, dropped or two neighbours swapped; t_idkind_*: the (type,
-- system) of documents only, for "comparable but different" (record numbers differ between two
-- registrations of one person, so only their agreement counts). NULL lists: no identifier.
CREATE OR REPLACE TEMP TABLE lk_tokens AS
WITH names AS (
    SELECT kind, value, lk_hmac(kind || '|' || value) AS tok
    FROM (
        SELECT 'name' AS kind, given AS value FROM lk_normalized WHERE given IS NOT NULL
        UNION SELECT 'name', family FROM lk_normalized WHERE family IS NOT NULL
        UNION SELECT 'name', other_family FROM lk_normalized WHERE other_family IS NOT NULL
        UNION SELECT 'city', city FROM lk_normalized WHERE city IS NOT NULL
        UNION SELECT 'zip', zip FROM lk_normalized WHERE zip IS NOT NULL
        UNION SELECT 'sdx', family_sdx FROM lk_normalized WHERE family_sdx IS NOT NULL
        UNION SELECT 'init', left(given_first, 1) FROM lk_normalized WHERE given_first IS NOT NULL
    )
),
deletions AS (
    SELECT value, unnest(lk_deletions(value)) AS variant FROM names WHERE kind = 'name'
),
near AS (  -- per name, the tokens of the other names of this run one edit apart (sorted)
    SELECT a.value, list_sort(list(DISTINCT n.tok)) AS toks
    FROM deletions a JOIN deletions b ON b.variant = a.variant AND b.value <> a.value
    JOIN names n ON n.kind = 'name' AND n.value = b.value
    GROUP BY a.value
),
firsts AS (
    SELECT given_first, lk_hmac('first|' || given_first) AS t_given_first,
           list_transform(given_forms, f -> lk_hmac('first|' || f)) AS t_given_forms,
           lk_hmac('first|' || given_canon) AS t_canon
    FROM (SELECT DISTINCT given_first, given_forms, given_canon FROM lk_normalized WHERE given_first IS NOT NULL)
),
dates AS (
    SELECT
        dob,
        lk_hmac('dob|' || strftime(dob, '%Y-%m-%d')) AS t_dob,
        lk_hmac('dob|' || strftime(lk_swapped(dob), '%Y-%m-%d')) AS t_dob_swap,
        list_transform(range(1, 9), i -> lk_hmac('dob-digit|' || i || '|' || substr(strftime(dob, '%Y%m%d'), 1, i - 1)
            || substr(strftime(dob, '%Y%m%d'), i + 1))) AS t_dob_digit,
        lk_hmac('ym|' || strftime(dob, '%Y-%m')) AS t_ym,
        [lk_hmac('ym|' || strftime(dob - INTERVAL 1 MONTH, '%Y-%m')),
         lk_hmac('ym|' || strftime(dob + INTERVAL 1 MONTH, '%Y-%m'))] AS t_ym_near,
        lk_hmac('year|' || CAST(year(dob) AS VARCHAR)) AS t_yob,
        -- the token of 1 January of the date's year: t_dob = t_ydate marks a possibly year-only date
        lk_hmac('dob|' || strftime(dob, '%Y') || '-01-01') AS t_ydate
    FROM (SELECT DISTINCT dob FROM lk_normalized WHERE dob IS NOT NULL)
),
years AS (  -- per birth year (full or partial date): its two ten-year bands' tokens
    SELECT y, [lk_hmac('yband|a|' || (y // 10)), lk_hmac('yband|b|' || ((y + 5) // 10))] AS t_yband
    FROM (SELECT DISTINCT coalesce(year(dob), part_year) AS y FROM lk_normalized) WHERE y IS NOT NULL
),
email_members AS (  -- per email of up to 40 characters: its deletion neighbourhood, records holding it
    SELECT email, n, unnest(lk_deletions(email)) AS d
    FROM (SELECT email, count(*) AS n FROM lk_normalized WHERE email IS NOT NULL AND length(email) <= 40 GROUP BY email)
),
email_near AS (  -- keyed members that at most $cap records share (a blocking key capped per member)
    SELECT email, list(lk_hmac('email-near|' || d) ORDER BY d) AS t_email_near
    FROM (SELECT email, d, sum(n) OVER (PARTITION BY d) AS held FROM email_members) WHERE held <= $cap
    GROUP BY email
),
letters AS (  -- per given name: keyed deletion neighbourhood of its sorted letters
    SELECT given, list_transform(lk_deletions(array_to_string(list_sort(string_split(given, '')), '')),
                                 d -> lk_hmac('letters|' || d)) AS t_given_letters
    FROM (SELECT DISTINCT given FROM lk_normalized WHERE given IS NOT NULL)
),
id_rows AS (
    SELECT record_id, unnest(ids) AS i FROM lk_normalized WHERE len(ids) > 0
),
id_values AS (  -- per distinct (type, value): its token and, for a document, its neighbourhood's tokens
    -- (record numbers are assigned in sequence: two people's MRNs are often one digit apart)
    SELECT type, value, lk_hmac('id|' || type || '|' || value) AS b,
           CASE WHEN length(value) <= 20 AND lk_id_document(type) THEN list_transform(lk_deletions(value), d -> lk_hmac('id-near|' || type || '|' || d)) END
               AS near
    FROM (SELECT DISTINCT i.type, i.value FROM id_rows)
),
id_systems AS (
    SELECT system, lk_hmac('id-system|' || system) AS s FROM (SELECT DISTINCT i.system FROM id_rows WHERE i.system IS NOT NULL)
),
id_types AS (
    SELECT type, lk_hmac('id-type|' || type) AS t FROM (SELECT DISTINCT i.type AS type FROM id_rows)
),
id_parts AS (
    SELECT r.record_id, lk_id_document(r.i.type) AS doc, v.b, v.near, s.s, t.t
    FROM id_rows r
    JOIN id_values v ON v.type = r.i.type AND v.value = r.i.value
    JOIN id_types t ON t.type = r.i.type
    LEFT JOIN id_systems s ON s.system = r.i.system
),
ids AS (
    SELECT record_id,
        list_distinct(flatten(list(CASE WHEN s IS NULL THEN [b] WHEN doc THEN [lk_idhash(b, s), b] ELSE [lk_idhash(b, s)] END)))
            AS t_id_offer,
        list_distinct(list(CASE WHEN s IS NULL THEN b ELSE lk_idhash(b, s) END)) AS t_id_accept,
        list_distinct(flatten(list(CASE WHEN s IS NULL THEN near
            WHEN doc THEN list_transform(near, n -> lk_idhash(n, s)) || near
            ELSE list_transform(near, n -> lk_idhash(n, s)) END))) AS t_idnear_offer,
        list_distinct(flatten(list(CASE WHEN s IS NULL THEN near ELSE list_transform(near, n -> lk_idhash(n, s)) END)))
            AS t_idnear_accept,
        list_distinct(flatten(list(CASE WHEN NOT doc THEN [] WHEN s IS NULL THEN [t] ELSE [lk_idhash(t, s), t] END)))
            AS t_idkind_offer,
        list_distinct(flatten(list(CASE WHEN NOT doc THEN [] WHEN s IS NULL THEN [t] ELSE [lk_idhash(t, s)] END)))
            AS t_idkind_accept
    FROM id_parts GROUP BY record_id
),
record AS (
    SELECT
        n.record_id, n.source_system, n.source_person_id, n.batch_id, n.sex,
        g.tok AS t_given, f.t_given_first, f.t_given_forms, ng.toks AS t_given_near,
        fa.tok AS t_family, nf.toks AS t_family_near, m.tok AS t_maiden,
        d.t_dob, d.t_dob_swap, d.t_dob_digit, d.t_ym_near, d.t_ydate, yb.t_yband, gl.t_given_letters,
        -- a partial birth date gives year-month and year tokens (per record: they are rare)
        coalesce(d.t_ym, CASE WHEN n.dob IS NULL AND n.part_month IS NOT NULL
            THEN lk_hmac('ym|' || printf('%04d-%02d', n.part_year, n.part_month)) END) AS t_ym,
        coalesce(d.t_yob, CASE WHEN n.dob IS NULL AND n.part_year IS NOT NULL
            THEN lk_hmac('year|' || CAST(n.part_year AS VARCHAR)) END) AS t_yob,
        lk_hmac('ssn|' || n.ssn) AS t_ssn,
        ids.t_id_offer, ids.t_id_accept, ids.t_idnear_offer, ids.t_idnear_accept, ids.t_idkind_offer,
        ids.t_idkind_accept,
        lk_hmac('phone|' || n.phone) AS t_phone,
        lk_hmac('street|' || n.street) AS t_street,
        z.tok AS t_zip,
        c.tok AS t_city,
        lk_hmac('email|' || n.email) AS t_email,
        lk_hmac('email-user|' || n.email_user) AS t_email_user, en.t_email_near,
        f.t_canon, sx.tok AS t_family_sdx, gi.tok AS t_given_init,
        n.street, n.email, n.given, n.family
    FROM lk_normalized n
    LEFT JOIN dates d ON d.dob = n.dob
    LEFT JOIN firsts f ON f.given_first = n.given_first
    LEFT JOIN names g ON g.kind = 'name' AND g.value = n.given
    LEFT JOIN names fa ON fa.kind = 'name' AND fa.value = n.family
    LEFT JOIN near ng ON ng.value = n.given
    LEFT JOIN near nf ON nf.value = n.family
    LEFT JOIN names m ON m.kind = 'name' AND m.value = n.other_family
    LEFT JOIN names c ON c.kind = 'city' AND c.value = n.city
    LEFT JOIN names z ON z.kind = 'zip' AND z.value = n.zip
    LEFT JOIN names sx ON sx.kind = 'sdx' AND sx.value = n.family_sdx
    LEFT JOIN names gi ON gi.kind = 'init' AND gi.value = left(n.given_first, 1)
    LEFT JOIN ids ON ids.record_id = n.record_id
    LEFT JOIN years yb ON yb.y = coalesce(year(n.dob), n.part_year)
    LEFT JOIN letters gl ON gl.given = n.given
    LEFT JOIN email_near en ON en.email = n.email
),
keyed AS (
SELECT
    r.* EXCLUDE (t_canon, t_family_sdx, t_given_init, street, email, given, family),
    -- the deterministic name rule: the call name itself (a nickname list relates names that are not
    -- one person's: robert and william share "bill"), never on a possibly year-only 1 January date
    CASE WHEN t_given_first IS NOT NULL AND t_family IS NOT NULL AND t_dob IS NOT NULL AND t_dob <> t_ydate
         THEN CAST(hash('k_name_dob', t_given_first, t_family, t_dob) >> 4 AS BIGINT) END AS k_name_dob,
    CASE WHEN t_ssn IS NOT NULL AND t_dob IS NOT NULL
         THEN CAST(hash('k_ssn_dob', t_ssn, t_dob) >> 4 AS BIGINT) END AS k_ssn_dob,
    CASE WHEN t_canon IS NOT NULL AND t_dob IS NOT NULL AND t_zip IS NOT NULL
         THEN CAST(hash('k_given_dob_zip', t_canon, t_dob, t_zip) >> 4 AS BIGINT) END AS k_given_dob_zip,
    CASE WHEN t_canon IS NOT NULL AND t_family IS NOT NULL AND t_yob IS NOT NULL
         THEN CAST(hash('k_name_yob', t_canon, t_family, t_yob) >> 4 AS BIGINT) END AS k_name_yob,
    CASE WHEN t_dob IS NOT NULL AND t_given_init IS NOT NULL
         THEN CAST(hash('k_dob_init', t_dob, t_given_init) >> 4 AS BIGINT) END AS k_dob_init,
    CASE WHEN t_dob_swap IS NOT NULL AND t_given_init IS NOT NULL
         THEN CAST(hash('k_dob_init', t_dob_swap, t_given_init) >> 4 AS BIGINT) END AS k_dob_swap_init,
    -- blocking keys capped by frequency (tokens.py: cap_keys), so they hold no birth date
    CASE WHEN t_canon IS NOT NULL AND t_family IS NOT NULL
         THEN CAST(hash('k_names', t_canon, t_family) >> 4 AS BIGINT) END AS k_names,
    CASE WHEN t_family_sdx IS NOT NULL AND t_given_init IS NOT NULL
         THEN CAST(hash('k_sdx_init', t_family_sdx, t_given_init) >> 4 AS BIGINT) END AS k_sdx_init,
    CASE WHEN t_dob IS NOT NULL THEN CAST(hash('k_dob', t_dob) >> 4 AS BIGINT) END AS k_dob,
    CASE WHEN t_family IS NOT NULL AND t_city IS NOT NULL
         THEN CAST(hash('k_family_city', t_family, t_city) >> 4 AS BIGINT) END AS k_family_city,
    CASE WHEN t_given IS NOT NULL AND t_city IS NOT NULL
         THEN CAST(hash('k_family_city', t_given, t_city) >> 4 AS BIGINT) END AS k_given_city,
    CASE WHEN t_family_sdx IS NOT NULL AND t_yob IS NOT NULL
         THEN CAST(hash('k_sdx_yob', t_family_sdx, t_yob) >> 4 AS BIGINT) END AS k_sdx_yob,
    CASE WHEN t_given IS NOT NULL AND t_yob IS NOT NULL
         THEN CAST(hash('k_name_yob1', t_given, t_yob) >> 4 AS BIGINT) END AS k_given_yob,
    CASE WHEN t_family IS NOT NULL AND t_yob IS NOT NULL
         THEN CAST(hash('k_name_yob1', t_family, t_yob) >> 4 AS BIGINT) END AS k_family_yob,
    CASE WHEN t_zip IS NOT NULL AND t_family IS NOT NULL
         THEN CAST(hash('k_zip_family', t_zip, t_family) >> 4 AS BIGINT) END AS k_zip_family,
    -- name + name, name + city, postcode + name with each name as written and as every name of this
    -- run one edit apart (t_*_near); members capped below
    CASE WHEN t_given IS NOT NULL AND t_family IS NOT NULL THEN list_concat(
        list_transform(list_concat([t_family], t_family_near), f -> CAST(hash('k_gf', t_given, f) >> 4 AS BIGINT)),
        list_transform(t_given_near, g -> CAST(hash('k_gf', g, t_family) >> 4 AS BIGINT))) END AS k_gf_near,
    CASE WHEN t_city IS NOT NULL THEN nullif(list_transform(
        list_filter(list_concat([t_given, t_family], t_given_near, t_family_near), x -> x IS NOT NULL),
        x -> CAST(hash('k_family_city', x, t_city) >> 4 AS BIGINT)), []) END AS k_city_near,
    CASE WHEN t_zip IS NOT NULL THEN nullif(list_transform(
        list_filter(list_concat([t_given, t_family], t_given_near, t_family_near), x -> x IS NOT NULL),
        x -> CAST(hash('k_zip_family', t_zip, x) >> 4 AS BIGINT)), []) END AS k_zip_near,
    CASE WHEN t_zip IS NOT NULL AND t_given_init IS NOT NULL
         THEN CAST(hash('k_zip_init', t_zip, t_given_init) >> 4 AS BIGINT) END AS k_zip_init,
    bg.words AS bf_given,
    bf.words AS bf_family,
    bs.words AS bf_street,
    be.words AS bf_email
FROM record r
LEFT JOIN lk_bloom bg ON bg.field = 'given' AND bg.value = r.given
LEFT JOIN lk_bloom bf ON bf.field = 'family' AND bf.value = r.family
LEFT JOIN lk_bloom bs ON bs.field = 'street' AND bs.value = r.street
LEFT JOIN lk_bloom be ON be.field = 'email' AND be.value = r.email
),
near_members AS (  -- (list, record, member) of the near-name key lists (distinct within a record)
    SELECT 'gf' AS kind, record_id, unnest(list_distinct(k_gf_near)) AS m FROM keyed
    UNION ALL SELECT 'city', record_id, unnest(list_distinct(k_city_near)) FROM keyed
    UNION ALL SELECT 'zip', record_id, unnest(list_distinct(k_zip_near)) FROM keyed
),
near_frequent AS (  -- members more than $cap records hold (a hash aggregate: a window sorted them)
    SELECT kind, m FROM near_members GROUP BY kind, m HAVING count(*) > $cap
),
near_kept AS (
    SELECT record_id,
        list(m ORDER BY m) FILTER (WHERE kind = 'gf') AS k_gf_near,
        list(m ORDER BY m) FILTER (WHERE kind = 'city') AS k_city_near,
        list(m ORDER BY m) FILTER (WHERE kind = 'zip') AS k_zip_near
    FROM near_members ANTI JOIN near_frequent USING (kind, m) GROUP BY record_id
)
SELECT k.* REPLACE (n.k_gf_near AS k_gf_near, n.k_city_near AS k_city_near, n.k_zip_near AS k_zip_near)
FROM keyed k LEFT JOIN near_kept n USING (record_id)
