-- visit_rollup.sql: staged source visits (one row per source encounter) -> rolled-up OMOP visits.
--
-- Run by rwe_assets.lib.cdm.visits.rollup_visits after visit_rollup_input.sql has built the typed
-- input (work_base, rule R0 applied) and the input was validated (visit_key unique and not NULL,
-- person_id and start_datetime not NULL). Placeholders ({name}, filled by lib/cdm/sql.py; see
-- lib/sql/README.md):
--   work_base, work_stay, work_dup, work_assigned    temporary work tables, dropped at the end
--   visit_table        output: one row per rolled-up visit
--   map_table          output: visit_key -> visit_group_key (+ rollup_rule) for every input row
--   output_table_kind  TABLE, or TEMP TABLE when the caller asked for outputs in the temp catalog
--   inpatient_concept_id, er_inpatient_concept_id    9201 and 262
-- The concept ids live in one place, the documented constants of visits.py; nothing here hardcodes one.
--
-- Every step is a set operation (window functions, GROUP BY, hash joins): no row loops.
-- Every ORDER BY ends with visit_key (unique), so the result does not depend on input order.
-- Both engines run this file: DuckDB as written, Spark through lib/spark/transpile.py (hash becomes
-- xxhash64, arg_min_null MIN_BY, a struct literal STRUCT); so no rowid (Spark has none): rows are
-- joined on visit_key, unique.
-- Speed: windows run over the inpatient and ER rows only, narrow; duplicate candidates are found by a
-- GROUP BY on one 64-bit hash; rows that merge with nothing (nearly all) skip the final aggregation.
--
-- RULES, and why
--
-- R0  End datetime. A NULL end_datetime (or one before the start) is replaced by the start: the visit
--     lasts an instant on its start day. For outpatient-like visits that is what they are; for an
--     inpatient stay with no discharge recorded we do not invent a length of stay: the stay ends on its
--     admission day until another record (a later encounter or the payer's claim) extends it through
--     R1. Same convention as OHDSI's claims ETL specifications (end missing or before start: end =
--     start).
--
-- R1  'inpatient_contiguous'. Inpatient rows (visit_class inpatient or inpatient_claim) of one person
--     whose dates overlap or touch - the next admission date is at most one calendar day after the
--     latest discharge date seen so far - are one inpatient stay (9201) from the earliest start to the
--     latest end. Chains merge fully (A overlaps B, B touches C: one stay), because the comparison is
--     against the RUNNING MAX of end dates (gaps-and-islands), not against the previous row only.
--     Why: a transfer between wards or hospitals, or a discharge and readmission the next day, is one
--     period of inpatient care. Why dates, not datetimes: claims carry dates only (midnight), EHRs carry
--     times; a datetime rule would merge or split the same two stays depending on which source
--     recorded them. Consequence: two separate stays of one person always have at least one full
--     calendar day between them (next start date > previous end date + 1).
--     Source systems are NOT a condition: a hospital's admission and the payer's inpatient claim for
--     the same stay (persons already linked by the caller) overlap and become one visit - the point of
--     linkage is one patient journey, not one visit per data feed.
--
-- R2  'er_to_inpatient'. An emergency visit E is attached to the inpatient stay S of the same person
--     (a stay as built by R1) when S's admission date lies in [start date of E, end date of E + 1 day]:
--     the patient was admitted while still in the ER or by the next calendar day after leaving it.
--     Dates again, as for R1: an ER visit on the admission date joins whatever its time of day, since
--     a claim's admission has no time.
--     If several stays qualify (only possible for an ER visit lasting days), E joins the EARLIEST one,
--     so every ER visit joins at most one stay and no transitive closure is needed. The merged visit is
--     an 'Emergency Room and Inpatient Visit' (262) from the earliest start (normally the ER arrival) to
--     the latest end (normally the discharge). Several ER visits may join the same stay.
--     Not merged by R2: an ER visit that starts after the admission date (an ER visit during a stay
--     stays its own 9203 visit), an ER visit 2+ days before the admission, urgent care (not an ER).
--     Why: OMOP's 262 is a visit to the ER followed by a subsequent inpatient visit; counting the ER
--     visit and the admission as two visits double-counts hospital use and cuts the episode in two.
--
-- R3  'duplicate'. Rows not taken by R1/R2 merge only when they are exact duplicates: same person,
--     visit_class, start_datetime, end_datetime (after R0) and source_system. Why: a feed that sends an
--     encounter twice (resubmission, overlapping extract) must not create two visits. Anything less than
--     an exact match is NOT merged: Synthea writes each encounter as its own record, and two
--     outpatient visits on one day (a GP visit and a lab visit) are two visits in OMOP too. Rows from
--     different source systems are never duplicates of each other; only R1 and R2 merge across sources.
--
-- R4  Everything else is a visit of its own ('none').
--
-- Output conventions
--   visit_group_key     smallest visit_key of the group (stable under reruns and input order).
--   rollup_rule (map)   'none' for the row whose key is the group key; for every other row the rule
--                       that merged it: in an inpatient/ER group, inpatient rows other than the group's
--                       smallest-keyed inpatient row are 'inpatient_contiguous', the rest
--                       'er_to_inpatient'; outside such groups 'duplicate'. So a stay of k inpatient
--                       and m ER rows counts k-1 'inpatient_contiguous' and m 'er_to_inpatient' rows,
--                       and rows in = visits ('none' rows) + rows merged, always.
--   visit_concept_id    R1 group: 9201; R2 group: 262; otherwise the class's concept (VISIT_CLASSES).
--   visit span          earliest start .. latest end over all rows of the group (events recorded by any
--                       merged row fall inside the visit).
--   first source visit  the group's row with the smallest (start date, not-ER, start_datetime,
--                       visit_key): the earliest row, except that on the first day an ER row goes first,
--                       so a 262 visit is always described by its ER visit even when a date-only claim
--                       (midnight) of the admission day sorts before the ER arrival time. It gives
--                       visit_source_value, provider_key, care_site_key and source_system (NULLs kept).

-- R1 + R2: which inpatient and ER rows belong to one stay. Narrow rows only.
CREATE OR REPLACE TEMP TABLE {work_stay} AS
WITH
-- R1, step 1: for each inpatient row, the latest end date among the person's EARLIER inpatient rows
-- (earlier = smaller start_datetime, ties by visit_key). A running max, so chains are caught.
ip_running AS (
    SELECT
        visit_key, person_id, rollup_role, start_datetime, start_date,
        max(end_date) OVER (
            PARTITION BY person_id ORDER BY start_datetime, visit_key
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS prev_max_end_date
    FROM {work_base}
    WHERE rollup_role = 'inpatient'
),
-- R1, step 2: a row opens a new stay when its start date is more than 1 day after every earlier end
-- date; the running count of such rows numbers the person's stays (gaps-and-islands).
ip_stay AS (
    SELECT
        visit_key, person_id, rollup_role, start_date,
        sum(CASE WHEN prev_max_end_date IS NULL OR start_date > prev_max_end_date + 1 THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id ORDER BY start_datetime, visit_key ROWS UNBOUNDED PRECEDING)
            AS stay_no
    FROM ip_running
),
-- Admission date of each stay. Unique per person: two stays starting on one date would have touched.
stay_admission AS (
    SELECT person_id, stay_no, min(start_date) AS admission_date
    FROM ip_stay
    GROUP BY person_id, stay_no
),
-- R2: each ER row finds the person's first stay admitted on or after the ER start date and joins it
-- if that admission is no later than the ER end date + 1 day. Set-based: ER rows and stay admissions
-- in one date-ordered stream per person (on one date the ER row sorts first); the smallest admission
-- in the frame from the ER row onwards is the next one. (Not an ASOF join: inside a transaction
-- DuckDB can plan ASOF as a nested loop, 100x slower.)
er_and_admissions AS (
    SELECT person_id, visit_key, start_date AS on_date, 0 AS kind, end_date, NULL AS admission
    FROM {work_base}
    WHERE rollup_role = 'emergency'
    UNION ALL
    SELECT
        person_id, NULL, admission_date, 1, NULL,
        {'admission_date': admission_date, 'stay_no': stay_no}
    FROM stay_admission
),
er_next_admission AS (
    SELECT
        visit_key, person_id, kind, end_date,
        min(admission) OVER (
            PARTITION BY person_id ORDER BY on_date, kind, visit_key
            ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING
        ) AS next_admission
    FROM er_and_admissions
),
er_attached AS (
    SELECT visit_key, person_id, 'emergency' AS rollup_role, next_admission.stay_no AS stay_no
    FROM er_next_admission
    WHERE kind = 0 AND next_admission.admission_date <= end_date + 1
),
members AS (
    SELECT visit_key, person_id, rollup_role, stay_no FROM ip_stay
    UNION ALL
    SELECT visit_key, person_id, rollup_role, stay_no FROM er_attached
),
grouped AS (
    SELECT
        visit_key,
        rollup_role,
        min(visit_key) OVER grp AS visit_group_key,
        min(visit_key) FILTER (WHERE rollup_role = 'inpatient') OVER grp AS first_inpatient_key,
        count(*) OVER grp AS group_rows,
        bool_or(rollup_role = 'emergency') OVER grp AS has_emergency
    FROM members
    WINDOW grp AS (PARTITION BY person_id, stay_no)
)
SELECT
    visit_key,
    visit_group_key,
    group_rows,
    CASE WHEN has_emergency THEN {er_inpatient_concept_id} ELSE {inpatient_concept_id} END AS group_concept_id,
    CASE
        WHEN visit_key = visit_group_key THEN 'none'
        WHEN rollup_role = 'inpatient' AND visit_key <> first_inpatient_key THEN 'inpatient_contiguous'
        ELSE 'er_to_inpatient'
    END AS rollup_rule
FROM grouped;

-- R3: groups of exact duplicates among the rows R1/R2 leave alone. Inpatient rows are excluded (R1
-- already merges them); ER rows are included: identical ER rows are either all attached to a stay by
-- R2 (which then wins) or none is, so a duplicate group is never split. NULLs match NULLs (a window
-- partition puts them together). For speed, one 64-bit hash of the five columns finds the candidate
-- rows first; the exact partition then decides (a hash collision only costs a comparison).
CREATE OR REPLACE TEMP TABLE {work_dup} AS
WITH
keyed AS (
    SELECT
        visit_key, person_id, visit_class, start_datetime, end_datetime, source_system,
        hash(person_id, visit_class, start_datetime, end_datetime, source_system) AS dup_hash
    FROM {work_base}
    WHERE rollup_role <> 'inpatient'
),
candidate_hash AS (
    SELECT dup_hash FROM keyed GROUP BY dup_hash HAVING count(*) > 1
),
candidates AS (
    SELECT * FROM keyed SEMI JOIN candidate_hash USING (dup_hash)
)
SELECT
    visit_key,
    min(visit_key) OVER dup AS visit_group_key,
    count(*) OVER dup AS group_rows
FROM candidates
WINDOW dup AS (PARTITION BY person_id, visit_class, start_datetime, end_datetime, source_system)
QUALIFY count(*) OVER dup > 1;

-- Every row with its group: a stay (R1/R2), else a duplicate group (R3), else itself (R4). The two
-- group tables are small (inpatient and ER rows, duplicate candidates): the join's build sides.
CREATE OR REPLACE TEMP TABLE {work_assigned} AS
SELECT
    b.visit_key, b.person_id, b.source_system, b.provider_key, b.care_site_key, b.source_value,
    b.start_datetime, b.end_datetime, b.start_date, b.rollup_role,
    coalesce(s.group_concept_id, b.class_concept_id) AS visit_concept_id,
    coalesce(s.visit_group_key, d.visit_group_key, b.visit_key) AS visit_group_key,
    coalesce(s.group_rows, d.group_rows, 1) AS group_rows,
    CASE
        WHEN s.visit_key IS NOT NULL THEN s.rollup_rule
        WHEN d.visit_key IS NOT NULL AND b.visit_key <> d.visit_group_key THEN 'duplicate'
        ELSE 'none'
    END AS rollup_rule
FROM {work_base} AS b
LEFT JOIN {work_stay} AS s ON s.visit_key = b.visit_key
LEFT JOIN {work_dup} AS d ON d.visit_key = b.visit_key;

DROP TABLE {work_base};
DROP TABLE {work_stay};
DROP TABLE {work_dup};

CREATE OR REPLACE {output_table_kind} {visit_table} AS
-- Rows that merge with nothing are their own visit as they are.
SELECT
    visit_group_key,
    person_id,
    CAST(visit_concept_id AS INTEGER) AS visit_concept_id,
    CAST(start_datetime AS DATE) AS visit_start_date,
    start_datetime AS visit_start_datetime,
    CAST(end_datetime AS DATE) AS visit_end_date,
    end_datetime AS visit_end_datetime,
    source_value AS visit_source_value,
    CAST(1 AS BIGINT) AS source_rows,
    provider_key,
    care_site_key,
    source_system
FROM {work_assigned}
WHERE group_rows = 1
UNION ALL
SELECT
    visit_group_key,
    person_id,
    CAST(visit_concept_id AS INTEGER),
    CAST(visit_start_datetime AS DATE),
    visit_start_datetime,
    CAST(visit_end_datetime AS DATE),
    visit_end_datetime,
    first_visit.source_value,
    source_rows,
    first_visit.provider_key,
    first_visit.care_site_key,
    first_visit.source_system
FROM (
    SELECT
        visit_group_key,
        min(person_id) AS person_id,
        min(visit_concept_id) AS visit_concept_id,
        min(start_datetime) AS visit_start_datetime,
        max(end_datetime) AS visit_end_datetime,
        count(*) AS source_rows,
        -- The first source visit; arg_min_null keeps its NULLs instead of borrowing another row's value.
        arg_min_null(
            {
                'source_value': source_value,
                'provider_key': provider_key,
                'care_site_key': care_site_key,
                'source_system': source_system
            },
            (start_date, rollup_role <> 'emergency', start_datetime, visit_key)
        ) AS first_visit
    FROM {work_assigned}
    WHERE group_rows > 1
    GROUP BY visit_group_key
);

CREATE OR REPLACE {output_table_kind} {map_table} AS
SELECT visit_key, visit_group_key, person_id, rollup_rule
FROM {work_assigned};

DROP TABLE {work_assigned};
