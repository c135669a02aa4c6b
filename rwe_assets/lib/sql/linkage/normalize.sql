-- Normalization of person identifiers before they are keyed (docs/linkage.md, "Normalization").
-- Every macro returns NULL for a value that must not take part in matching: missing, placeholder
-- ("UNKNOWN", 999-99-9999, 1900-01-01, ...), impossible (a 13th month, a birth in the future) or too
-- short to mean anything. NULL never agrees with anything, so a placeholder cannot make two people match.

-- Words of a name: case and Latin accents folded, anything that is not a letter (digits Synthea
-- appends, apostrophes, hyphens, dots) splits words; titles and generational suffixes dropped.
-- Letters of other scripts are kept as written (no transliteration).
CREATE OR REPLACE TEMP MACRO lk_words(x) AS list_filter(
    string_split(trim(regexp_replace(lower(strip_accents(coalesce(CAST(x AS VARCHAR), ''))), '[^\p{L}]+', ' ', 'g')), ' '),
    w -> w <> '' AND w NOT IN ('mr', 'mrs', 'ms', 'miss', 'dr', 'prof', 'jr', 'sr', 'ii', 'iii', 'iv', 'md', 'phd')
);

-- Words of a given name: lk_words without honorifics, ranks and ordinals ("Sir", "Rt. Hon.", "Maj.-Gen.",
-- "the", "1st Bt."), which registers write in the given-name field. Only there: Lord, Major, Baron and
-- the like are also family names.
CREATE OR REPLACE TEMP MACRO lk_given_words(x) AS list_filter(lk_words(x), w -> w NOT IN (
    'sir', 'dame', 'lord', 'lady', 'hon', 'rt', 'rev', 'revd', 'reverend', 'fr', 'col', 'colonel', 'gen',
    'general', 'maj', 'major', 'capt', 'captain', 'lt', 'lieut', 'cdr', 'cmdr', 'adm', 'admiral', 'sgt',
    'baron', 'baroness', 'viscount', 'viscountess', 'marquess', 'countess', 'bt', 'bart', 'kt', 'esq', 'the',
    'st', 'nd', 'rd', 'th'
));

-- A whole name as one key (words joined: "Mary Ann" = "Maryann", "O'Brien" = "OBrien").
CREATE OR REPLACE TEMP MACRO lk_joined(words) AS (
    WITH joined AS (SELECT array_to_string(words, '') AS v)
    SELECT CASE WHEN length(v) < 2 OR v IN (
        'unknown', 'unk', 'none', 'null', 'na', 'nn', 'nk', 'noname', 'notgiven', 'notknown', 'anonymous',
        'test', 'testpatient', 'patient', 'xx', 'xxx', 'xxxx', 'baby', 'babyboy', 'babygirl', 'infant',
        'newborn', 'unnamed', 'doe', 'johndoe', 'janedoe', 'tbd', 'unidentified', 'missing', 'blank'
    ) THEN NULL ELSE v END FROM joined
);
CREATE OR REPLACE TEMP MACRO lk_name(x) AS lk_joined(lk_words(x));
CREATE OR REPLACE TEMP MACRO lk_given(x) AS lk_joined(lk_given_words(x));

-- The first word of a given name (the call name; later words are middle names).
CREATE OR REPLACE TEMP MACRO lk_first_word(x) AS
    CASE WHEN lk_given(x) IS NULL THEN NULL ELSE nullif(lk_name(lk_given_words(x)[1]), '') END;

-- Birth dates: DATE, or text as ISO (2001-02-03), compact (20010203), US (02/03/2001) or dotted
-- European (03.02.2001). Impossible dates parse to NULL; so do the known placeholders (1900-01-01,
-- 1901-01-01, the spreadsheet and database zero dates 1899-12-30/31, 1753-01-01, 0001-01-01, the 1st
-- of January of a round century before 1900), dates before the year 1000 and dates after the reference
-- day. Other dates before 1900 are kept: rare in clinical data, but a value like any other (a
-- registry of historical persons has nothing else), and they agree only with the same date.
CREATE OR REPLACE TEMP MACRO lk_date(x, today) AS (
    WITH parsed AS (
        SELECT CAST(coalesce(
            try_strptime(trim(CAST(x AS VARCHAR)), '%Y-%m-%d'),
            try_strptime(trim(CAST(x AS VARCHAR)), '%Y%m%d'),
            try_strptime(trim(CAST(x AS VARCHAR)), '%m/%d/%Y'),
            try_strptime(trim(CAST(x AS VARCHAR)), '%d.%m.%Y')
        ) AS DATE) AS d
    )
    SELECT CASE WHEN d IN (DATE '1900-01-01', DATE '1901-01-01', DATE '1899-12-30', DATE '1899-12-31',
                           DATE '1753-01-01')
        OR (year(d) % 100 = 0 AND month(d) = 1 AND day(d) = 1 AND year(d) < 1900)
        OR year(d) < 1000 OR d > today THEN NULL ELSE d END
    FROM parsed
);

-- Day and month swapped, where that is another valid date (the commonest date-entry error).
CREATE OR REPLACE TEMP MACRO lk_swapped(d) AS
    CASE WHEN day(d) <= 12 AND day(d) <> month(d) THEN make_date(year(d), day(d), month(d)) END;

-- SSN: nine digits; never-issued area 000 or 666, group 00, serial 0000, one repeated digit and
-- the well-known dummies are placeholders. (900-999 stays valid: the generator uses it, and some
-- systems use it for ITINs.)
CREATE OR REPLACE TEMP MACRO lk_ssn(x) AS (
    WITH digits AS (SELECT regexp_replace(coalesce(CAST(x AS VARCHAR), ''), '[^0-9]', '', 'g') AS v)
    SELECT CASE WHEN length(v) <> 9 OR v[1:3] IN ('000', '666') OR v[4:5] = '00' OR v[6:9] = '0000'
        OR v IN ('123456789', '987654321', '078051120', '219099999') OR replace(v, v[1], '') = ''
        THEN NULL ELSE v END FROM digits
);

-- Other identifiers (driver's licence, passport): formats differ by issuer and country, so any format
-- is accepted: letters and digits upper-cased, spaces and separators dropped; 5 to 20 characters with
-- at least one digit. One repeated character and counting runs are placeholders.
CREATE OR REPLACE TEMP MACRO lk_ident(x) AS (
    WITH v AS (SELECT regexp_replace(upper(strip_accents(coalesce(CAST(x AS VARCHAR), ''))), '[^A-Z0-9]', '', 'g') AS s)
    SELECT CASE WHEN length(s) NOT BETWEEN 5 AND 20 OR NOT regexp_matches(s, '[0-9]') OR replace(s, s[1], '') = ''
        OR contains('1234567890123456789', s) OR contains('9876543210987654321', s) THEN NULL ELSE s END FROM v
);

-- Phone: ten digits (a leading country code 1 dropped); repeated digits and 1234567890 are placeholders.
CREATE OR REPLACE TEMP MACRO lk_phone(x) AS (
    WITH digits AS (SELECT regexp_replace(coalesce(CAST(x AS VARCHAR), ''), '[^0-9]', '', 'g') AS raw),
    national AS (SELECT CASE WHEN length(raw) = 11 AND raw[1] = '1' THEN raw[2:] ELSE raw END AS v FROM digits)
    SELECT CASE WHEN length(v) <> 10 OR v IN ('1234567890', '0123456789') OR replace(v, v[1], '') = ''
        OR regexp_matches(v, '^\d{3}(0000000|9999999|5555555)$') THEN NULL ELSE v END FROM national
);

-- ZIP or postcode. US ZIPs (digits only): the five-digit ZIP (ZIP+4 cut; a leading zero lost by a
-- spreadsheet restored). Postcodes with letters (UK 'TQ13 8DF', Canadian 'K1A 0B1', Dutch '1012 AB'):
-- lower case without spaces or punctuation, 4 to 10 characters, at least one digit.
CREATE OR REPLACE TEMP MACRO lk_zip(x) AS (
    WITH t AS (SELECT trim(coalesce(CAST(x AS VARCHAR), '')) AS s),
    digits AS (SELECT s, regexp_replace(split_part(s, '-', 1), '[^0-9]', '', 'g') AS raw FROM t),
    five AS (SELECT s, CASE WHEN length(raw) = 4 THEN '0' || raw WHEN length(raw) = 9 THEN raw[1:5] ELSE raw END AS v
             FROM digits),
    alnum AS (SELECT s, v, regexp_replace(lower(strip_accents(s)), '[^a-z0-9]', '', 'g') AS a FROM five)
    SELECT CASE
        WHEN regexp_matches(s, '[A-Za-z]') THEN
            CASE WHEN length(a) BETWEEN 4 AND 10 AND regexp_matches(a, '[0-9]') THEN a END
        WHEN length(v) <> 5 OR v IN ('00000', '99999', '12345') THEN NULL ELSE v END FROM alnum
);

-- American Soundex of a normalized name (letters a-z only; NULL when none): first letter and three
-- digits. Used for a blocking key only (a phonetic code is English-centred; comparisons use edits and
-- Bloom similarity). h and w do not separate equal codes, vowels do.
CREATE OR REPLACE TEMP MACRO lk_soundex(x) AS (
    WITH v AS (SELECT regexp_replace(coalesce(CAST(x AS VARCHAR), ''), '[^a-z]', '', 'g') AS n),
    d AS (SELECT n, translate(n, 'abcdefghijklmnopqrstuvwxyz', '01230129022455012623019202') AS c FROM v),
    h AS (SELECT n, c[1] || replace(c[2:], '9', '') AS c FROM d),
    runs AS (SELECT n, regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        c, '1+', '1', 'g'), '2+', '2', 'g'), '3+', '3', 'g'), '4+', '4', 'g'), '5+', '5', 'g'), '6+', '6', 'g') AS c
        FROM h)
    SELECT CASE WHEN n <> '' THEN n[1] || rpad(replace(c[2:], '0', ''), 3, '0')[1:3] END FROM runs
);

-- Sex: 'f' or 'm' (F, female, Woman, M, male, Man); anything else (unknown, other, X) is NULL.
CREATE OR REPLACE TEMP MACRO lk_sex(x) AS (
    WITH v AS (SELECT lower(trim(coalesce(CAST(x AS VARCHAR), ''))) AS s)
    SELECT CASE WHEN s IN ('f', 'female', 'woman', 'w') THEN 'f' WHEN s IN ('m', 'male', 'man') THEN 'm' END FROM v
);

-- Street line: words folded like names but digits kept; USPS suffix and direction abbreviations;
-- the unit part (apt, unit, suite, #...) dropped, since sources record it inconsistently.
CREATE OR REPLACE TEMP MACRO lk_street(x) AS (
    WITH words AS (
        SELECT string_split(trim(regexp_replace(
            regexp_replace(lower(strip_accents(coalesce(CAST(x AS VARCHAR), ''))), '\s*(#|\bapt\b|\bapartment\b|\bunit\b|\bsuite\b|\bste\b|\bfl\b|\bfloor\b).*$', ''),
            '[^\p{L}0-9]+', ' ', 'g')), ' ') AS w
    ),
    short AS (
        SELECT list_transform(w, x -> coalesce(MAP {
            'street': 'st', 'avenue': 'ave', 'av': 'ave', 'road': 'rd', 'drive': 'dr', 'lane': 'ln',
            'terrace': 'ter', 'court': 'ct', 'place': 'pl', 'boulevard': 'blvd', 'circle': 'cir',
            'highway': 'hwy', 'parkway': 'pkwy', 'square': 'sq', 'trail': 'trl', 'way': 'way',
            'north': 'n', 'south': 's', 'east': 'e', 'west': 'w', 'mount': 'mt', 'saint': 'st'
        }[x], x)) AS w FROM words
    )
    SELECT CASE WHEN length(array_to_string(w, '')) < 4
        OR array_to_string(w, ' ') IN ('unknown', 'none', 'homeless', 'no address', 'not known', 'na')
        THEN NULL ELSE array_to_string(w, ' ') END FROM short
);

-- City: letters only, folded like a name.
CREATE OR REPLACE TEMP MACRO lk_city(x) AS lk_name(x);

-- Email: lower case, spaces removed. A value kept even when mistyped (no '@'), since its Bloom filter
-- still compares; NULL when too short, without a letter, or a placeholder (a local part such as
-- none/noemail/unknown/test, or a reserved or placeholder domain such as example.com).
CREATE OR REPLACE TEMP MACRO lk_email(x) AS (
    WITH v AS (SELECT regexp_replace(lower(trim(coalesce(CAST(x AS VARCHAR), ''))), '\s+', '', 'g') AS e)
    SELECT CASE WHEN length(e) < 6 OR NOT regexp_matches(e, '[a-z]')
        OR split_part(e, '@', 1) IN ('none', 'noemail', 'nomail', 'no', 'na', 'n/a', 'null', 'unknown', 'unk',
            'test', 'x', 'xx', 'xxx', 'noreply', 'no-reply', 'donotreply', 'declined', 'refused', 'notprovided')
        OR (e LIKE '%@%' AND split_part(e, '@', 2) IN ('example.com', 'example.org', 'example.net', 'test.com',
            'noemail.com', 'none.com', 'nomail.com', 'invalid', 'email.invalid', 'localhost'))
        THEN NULL ELSE e END FROM v
);

-- The local part of a well-formed email (the user, kept when the provider changes); NULL otherwise.
CREATE OR REPLACE TEMP MACRO lk_email_user(e) AS
    CASE WHEN e LIKE '_%@_%' AND length(split_part(e, '@', 1)) >= 3 THEN split_part(e, '@', 1) END;

-- Deletion neighbourhood: the value and every value with one character deleted. Two values share a
-- member when they differ by one insertion, deletion, substitution or transposition of neighbours
-- (and by a few two-edit cases): the keyed equivalent of "edit distance <= 1". Values of 3 letters
-- or fewer get only themselves (one edit would relate too many of them).
CREATE OR REPLACE TEMP MACRO lk_deletions(v) AS CASE WHEN v IS NOT NULL THEN
    list_distinct([v] || CASE WHEN length(v) > 3 THEN
        list_transform(range(1, length(v) + 1), i -> substr(v, 1, i - 1) || substr(v, i + 1)) ELSE [] END) END;

-- Typed identifiers (staging.person_pii.identifiers: {type, system, value}; docs/linkage.md, "Identifiers").
-- Type: one of the registry's kinds; anything else ('other', a FHIR system without a type code) is a
-- number its system assigns, like an MRN.
CREATE OR REPLACE TEMP MACRO lk_id_type(t) AS (
    WITH v AS (SELECT lower(trim(coalesce(CAST(t AS VARCHAR), ''))) AS s)
    SELECT CASE WHEN s IN ('national_id', 'drivers_license', 'passport', 'mrn', 'member_id') THEN s ELSE 'other' END
    FROM v
);

-- Documents are issued to the person: two different numbers of one issuer are two people. Record numbers
-- (MRN, member id, other) are assigned per registration: a person registered twice has two.
CREATE OR REPLACE TEMP MACRO lk_id_document(t) AS t IN ('national_id', 'drivers_license', 'passport');

-- System (issuer, assigning authority): case, spaces and a trailing '/' folded; the US SSN's names
-- ('us-ssn', its FHIR URL and OID) become 'us-ssn'. A system that names the kind of number but no issuer
-- (Synthea's passport URL) is no system: such a document may agree with the same number of any issuer.
CREATE OR REPLACE TEMP MACRO lk_id_system(x) AS (
    WITH v AS (SELECT rtrim(lower(trim(coalesce(CAST(x AS VARCHAR), ''))), '/') AS s)
    SELECT CASE
        WHEN s IN ('us-ssn', 'http://hl7.org/fhir/sid/us-ssn', 'urn:oid:2.16.840.1.113883.4.1') THEN 'us-ssn'
        WHEN s IN ('', 'http://standardhealthrecord.org/fhir/structuredefinition/passportnumber') THEN NULL
        ELSE s END FROM v
);

-- Value: documents as lk_ident (5 to 20 letters and digits, placeholders NULL). Record numbers: letters and
-- digits upper-cased, separators dropped, leading zeros of an all-digit number dropped (one system pads
-- to a fixed width, another does not), 3 to 64 characters (a UUID is one), not one repeated character.
CREATE OR REPLACE TEMP MACRO lk_id_value(t, x) AS CASE WHEN lk_id_document(t) THEN lk_ident(x) ELSE (
    WITH a AS (SELECT regexp_replace(upper(strip_accents(coalesce(CAST(x AS VARCHAR), ''))), '[^A-Z0-9]', '', 'g') AS s),
    v AS (SELECT CASE WHEN regexp_full_match(s, '[0-9]+') THEN ltrim(s, '0') ELSE s END AS s FROM a)
    SELECT CASE WHEN length(s) BETWEEN 3 AND 64 AND replace(s, s[1], '') <> '' THEN s END FROM v
) END;

-- An identifier token combined with its system's token (tokens.sql): a 60-bit hash of two keyed tokens.
CREATE OR REPLACE TEMP MACRO lk_idhash(a, b) AS CAST(hash('id', a, b) >> 4 AS BIGINT);
