"""From scored pairs to persons: decisions, connected components, stable person ids.

Decisions (docs/linkage.md, "Decisions"): a pair is a match when a deterministic rule holds or its
match probability is at least ACCEPT; a review (clerical table, not merged) when it is at least REVIEW;
a reviewer's decision in linkage/clerical_decisions overrides both. Persons are the connected
components of the match edges, so chains (A~B, B~C) and within-source duplicates join one person.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.model import nickname_sql

ACCEPT = 0.95
REVIEW = 0.50
# An automatic probabilistic match needs evidence beyond the names: the fields other than the names
# (birth date, sex, SSN, licence/passport, contact, email) must on balance agree, by at least
# MIN_OTHER_WEIGHT bits. Names alone, however rare (after the term-frequency adjustment a rare name
# weighs 10 bits and more), were most false merges on a public historical register: near-empty
# records ("5th bt." / "6th bt.", no date, no place) and one rare name with a birth year in common
# but another birthplace. Such pairs go to review.
MIN_OTHER_WEIGHT = 1.0
OTHER_EVIDENCE = " + ".join(
    f"coalesce(mw_{c}, 0)" for c in ("dob", "sex", "ssn", "identifier", "contact", "email")
)
DECISION_SQL = f"""WHEN rule IS NOT NULL THEN 'match'
    WHEN match_probability >= {ACCEPT} AND NOT coalesce(household_conflict, false)
         AND {OTHER_EVIDENCE} >= {MIN_OTHER_WEIGHT} THEN 'match'
    WHEN match_probability >= {REVIEW} THEN 'review' ELSE 'non_match'"""
# Strong agreement: same SSN and birth date; or same call name, family name, birth date (not a
# 1 January, possibly a year-only date: tokens.sql, k_name_dob) and sex with no conflicting SSN.
# Twins share surname, birth date and address but differ in first name and SSN, so neither rule
# joins them.
DETERMINISTIC_RULES = {
    "ssn_dob": "l.k_ssn_dob = r.k_ssn_dob",
    "name_dob_sex": "l.k_name_dob = r.k_name_dob AND l.sex IS NOT DISTINCT FROM r.sex "
    "AND (l.t_ssn IS NULL OR r.t_ssn IS NULL OR l.t_ssn = r.t_ssn)",
}

# Household guard: a pair that shares a household's identifiers (surname, street, phone or email) but
# whose personal ones truly conflict is never an automatic match however high its score: twins, a
# Jr./Sr. of the same name, spouses, parent and child. At most review. "Conflict" uses the same fuzzy
# agreement as the model's comparison levels, so that a typo is not taken for another family member:
# first names conflict unless equal, nicknames of one name, one edit apart (david/davdi), swapped with
# the family name, or Dice >= 0.6; birth dates conflict when their years differ and they are neither
# day/month swapped, one digit apart nor in neighbouring months; full birth dates apart (DATES_APART)
# conflict with different first names, or at one street or phone; two different SSNs conflict.
# Two full birth dates, neither a typo of the other (not swapped, not one digit apart, not the same
# or neighbouring months) nor a possible year-only 1 January: with different first names (even
# nicknames of one name) that is two siblings of one birth year, not one person (Mary and Marie); at
# one address or phone, even with one first name (two Robert McGees of one home born months apart).
# A date with a day above 12 has no swapped form (NULL): that is "not swapped", not unknown.
DATES_APART = """(l.t_dob <> r.t_dob AND l.t_dob IS DISTINCT FROM r.t_dob_swap AND NOT list_has_any(l.t_dob_digit, r.t_dob_digit)
        AND l.t_ym <> r.t_ym AND NOT list_contains(l.t_ym_near, r.t_ym)
        AND l.t_dob <> l.t_ydate AND r.t_dob <> r.t_ydate)"""
HOUSEHOLD_CONFLICT = """(l.t_family = r.t_family OR l.t_street = r.t_street OR l.t_phone = r.t_phone
     OR l.t_email = r.t_email) AND (
    (l.t_given <> r.t_given AND NOT {nickname}
     AND NOT coalesce(list_contains(l.t_given_near, r.t_given), false)
     AND l.t_given IS DISTINCT FROM r.t_family AND l.t_family IS DISTINCT FROM r.t_given
     AND coalesce(lk_dice(l.bf_given, r.bf_given), 0) < 0.6)
    OR (l.t_yob <> r.t_yob AND l.t_dob IS DISTINCT FROM r.t_dob_swap
        AND NOT list_has_any(l.t_dob_digit, r.t_dob_digit) AND NOT list_contains(l.t_ym_near, r.t_ym))
    OR (l.t_given <> r.t_given AND {dates_apart})
    OR ((l.t_street = r.t_street OR l.t_phone = r.t_phone) AND {dates_apart})
    OR l.t_ssn <> r.t_ssn)""".format(
    nickname=nickname_sql("l.{}", "r.{}"),
    dates_apart=DATES_APART,
)


def decide(con: duckdb.DuckDBPyConnection, decisions: pa.Table | None) -> None:
    """TEMP TABLE lk_decided: lk_scored pairs with rule, decision and method; pairs below REVIEW
    are dropped (nothing to keep) unless a reviewer decided them."""
    rule = " ".join(f"WHEN {sql} THEN '{name}'" for name, sql in DETERMINISTIC_RULES.items())
    _register_decisions(con, decisions)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lk_decided AS
        WITH ruled AS (
            SELECT s.*, CASE {rule} END AS rule, {HOUSEHOLD_CONFLICT} AS household_conflict
            FROM lk_scored s JOIN lk_tokens l ON l.record_id = s.record_id_l
                             JOIN lk_tokens r ON r.record_id = s.record_id_r
        )
        SELECT ruled.*,
            CASE WHEN d.decision IS NOT NULL THEN d.decision
                 {DECISION_SQL} END AS decision,
            CASE WHEN d.decision IS NOT NULL THEN 'clerical' WHEN rule IS NOT NULL THEN 'deterministic'
                 ELSE 'probabilistic' END AS method
        FROM ruled LEFT JOIN lk_clerical_decisions d USING (record_id_l, record_id_r)
        WHERE d.decision IS NOT NULL OR rule IS NOT NULL OR match_probability >= {REVIEW}
        """
    )


def _register_decisions(con, decisions: pa.Table | None) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_clerical_decisions (record_id_l VARCHAR, record_id_r VARCHAR, "
        "decision VARCHAR)"
    )
    if decisions is not None and decisions.num_rows:
        con.register("lk_decisions_arrow", decisions)
        con.execute(
            "INSERT INTO lk_clerical_decisions SELECT least(record_id_l, record_id_r), "
            "greatest(record_id_l, record_id_r), arg_max(decision, decided_at) FROM lk_decisions_arrow "
            "WHERE decision IN ('match', 'non_match') GROUP BY ALL"
        )


def hold_bridges(con: duckdb.DuckDBPyConnection) -> int:
    """A record without a birth year that matches records with one keeps only its best such link (highest
    probability); its other probabilistic links to dated records go to review. Otherwise one record
    without the distinguishing field joins two people: `william jones`, no date, matched a William
    Jones born 1851 and one born 1858 (historical set). Returns the links held."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE lk_held AS
        WITH mixed AS (
            SELECT p.record_id_l, p.record_id_r,
                   CASE WHEN l.t_yob IS NULL THEN p.record_id_l ELSE p.record_id_r END AS undated,
                   p.match_probability
            FROM lk_pairs p JOIN lk_tokens l ON l.record_id = p.record_id_l
                            JOIN lk_tokens r ON r.record_id = p.record_id_r
            WHERE p.decision = 'match' AND p.method = 'probabilistic' AND (l.t_yob IS NULL) <> (r.t_yob IS NULL)
        ),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY undated ORDER BY match_probability DESC,
                                         record_id_l, record_id_r) AS rank
            FROM mixed
        )
        SELECT record_id_l, record_id_r FROM ranked WHERE rank > 1
        """
    )
    con.execute(
        "UPDATE lk_pairs SET decision = 'review' FROM lk_held h "
        "WHERE lk_pairs.record_id_l = h.record_id_l AND lk_pairs.record_id_r = h.record_id_r"
    )
    return con.execute("SELECT count(*) FROM lk_held").fetchone()[0]


def connected_components(con: duckdb.DuckDBPyConnection) -> int:
    """TEMP TABLE lk_cluster(record_id, cluster): cluster = the smallest record_id reachable through
    'match' edges of lk_pairs (label propagation; as many rounds as the longest chain). Returns rounds."""
    hold_bridges(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_edges AS SELECT record_id_l AS a, record_id_r AS b FROM lk_pairs "
        "WHERE decision = 'match' UNION ALL SELECT record_id_r, record_id_l FROM lk_pairs WHERE decision = 'match'"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_cluster AS SELECT record_id, record_id AS cluster FROM lk_tokens"
    )
    rounds = 0
    while True:
        rounds += 1
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE lk_cluster_next AS
            SELECT c.record_id, least(c.cluster, coalesce(min(n.cluster), c.cluster)) AS cluster
            FROM lk_cluster c LEFT JOIN lk_edges e ON e.a = c.record_id LEFT JOIN lk_cluster n ON n.record_id = e.b
            GROUP BY c.record_id, c.cluster
            """
        )
        changed = con.execute(
            "SELECT count(*) FROM lk_cluster_next n JOIN lk_cluster c USING (record_id) WHERE n.cluster <> c.cluster"
        ).fetchone()[0]
        con.execute("CREATE OR REPLACE TEMP TABLE lk_cluster AS SELECT * FROM lk_cluster_next")
        if changed == 0:
            con.execute("DROP TABLE lk_cluster_next")
            return rounds


def assign_person_ids(con: duckdb.DuckDBPyConnection, previous: pa.Table | None) -> None:
    """TEMP TABLES lk_crosswalk and lk_history from lk_cluster and the previous crosswalk.

    A cluster keeps the smallest (oldest) previous person_id among its records; its other previous
    ids are merged into it. A previous id found in several clusters (a split: a reviewer rejected a
    link, or a record's identifiers changed) stays with the cluster holding most of its records (then
    the smallest cluster key); the other parts get new ids. New ids continue after the largest id
    ever given, in cluster-key order, so they do not depend on input order."""
    _register_previous(con, previous)
    con.execute(_ASSIGN_SQL)


def _register_previous(con, previous: pa.Table | None) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_previous (source_system VARCHAR, source_person_id VARCHAR, "
        "person_id BIGINT, first_seen_batch VARCHAR)"
    )
    if previous is not None:
        con.register("lk_previous_arrow", previous)
        con.execute(
            "INSERT INTO lk_previous SELECT source_system, source_person_id, person_id, first_seen_batch "
            "FROM lk_previous_arrow"
        )


_ASSIGN_SQL = """
CREATE OR REPLACE TEMP TABLE lk_person AS
WITH members AS (
    SELECT c.record_id, c.cluster, p.person_id AS old_id
    FROM lk_cluster c JOIN lk_tokens t USING (record_id)
    LEFT JOIN lk_previous p ON p.source_system = t.source_system AND p.source_person_id = t.source_person_id
),
claims AS (  -- each previous id, the cluster it stays with (most of its records, then smallest cluster)
    SELECT old_id, cluster FROM (
        SELECT old_id, cluster, row_number() OVER (PARTITION BY old_id ORDER BY count(*) DESC, cluster) AS rank
        FROM members WHERE old_id IS NOT NULL GROUP BY old_id, cluster
    ) WHERE rank = 1
),
kept AS (SELECT cluster, min(old_id) AS person_id FROM claims GROUP BY cluster),
fresh AS (
    SELECT cluster, (SELECT coalesce(max(person_id), 0) FROM lk_previous)
           + row_number() OVER (ORDER BY cluster) AS person_id
    FROM (SELECT DISTINCT cluster FROM members) WHERE cluster NOT IN (SELECT cluster FROM kept)
)
SELECT m.record_id, m.cluster, m.old_id, CAST(coalesce(k.person_id, f.person_id) AS BIGINT) AS person_id
FROM members m LEFT JOIN kept k USING (cluster) LEFT JOIN fresh f USING (cluster);

CREATE OR REPLACE TEMP TABLE lk_history AS
WITH moved AS (
    SELECT old_id, person_id, count(*) AS records FROM lk_person
    WHERE old_id IS NOT NULL AND old_id <> person_id GROUP BY ALL
)
SELECT CASE WHEN old_id IN (SELECT person_id FROM lk_person) THEN 'split' ELSE 'merge' END AS event,
       old_id AS person_id, person_id AS new_person_id, records
FROM moved;

CREATE OR REPLACE TEMP TABLE lk_crosswalk AS
WITH edges AS (  -- accepted links touching each record, inside its person
    SELECT record_id_l AS record_id, method, match_probability FROM lk_pairs WHERE decision = 'match'
    UNION ALL SELECT record_id_r, method, match_probability FROM lk_pairs WHERE decision = 'match'
),
best AS (
    SELECT record_id, bool_or(method = 'clerical') AS clerical, bool_or(method = 'deterministic') AS det,
           max(match_probability) AS p
    FROM edges GROUP BY record_id
),
sizes AS (SELECT person_id, count(*) AS size FROM lk_person GROUP BY person_id)
SELECT t.source_system, t.source_person_id, p.person_id,
       CASE WHEN s.size = 1 THEN 'singleton' WHEN b.clerical THEN 'clerical' WHEN b.det THEN 'deterministic'
            ELSE 'probabilistic' END AS match_method,
       CASE WHEN s.size = 1 OR b.det OR b.clerical THEN 1.0 ELSE b.p END AS match_probability,
       coalesce(prev.first_seen_batch, t.batch_id) AS first_seen_batch
FROM lk_person p JOIN lk_tokens t USING (record_id) JOIN sizes s USING (person_id)
LEFT JOIN best b USING (record_id)
LEFT JOIN lk_previous prev ON prev.source_system = t.source_system AND prev.source_person_id = t.source_person_id
ORDER BY p.person_id, t.source_system, t.source_person_id
"""
