"""From scored pairs to persons: decisions, connected components, stable person ids.

Decisions (docs/linkage.md, "Decisions"): a pair is a match when a deterministic rule holds or its
match probability is at least ACCEPT; a review (clerical table, not merged) when it is at least REVIEW;
a reviewer's decision in linkage/clerical_decisions overrides both. Persons are the connected
components of the match edges, so chains (A~B, B~C) and within-source duplicates join one person,
except where a component holds a conflict: there the links are taken strongest first and a link that
would join two groups stating different birth dates, years or SSNs is held (split_conflicts).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.comparisons import nickname_sql
from rwe_assets.lib.linkage.conflicts import split_conflicts

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
# A scrambled first name (the same letters in another order, one more or less: isabelle/elsiabl) is no
# other family member's, and birth years up to 4 apart (sharing a ten-year band, t_yband) are a mistyped
# year, not a Jr./Sr. or a parent (years 1-4 apart were 2,080 of the 3,800 true pairs the guard held on
# fake_20000, none of the false ones); names swapped between the fields are one first name.
# Two full birth dates, neither a typo of the other (not swapped, not one digit apart, not the same
# or neighbouring months) nor a possible year-only 1 January: with different first names (even
# nicknames of one name) that is two siblings of one birth year, not one person (Mary and Marie); at
# one address or phone, even with one first name (two Robert McGees of one home born months apart).
# A date with a day above 12 has no swapped form (NULL): that is "not swapped", not unknown.
# At one street or phone a 1 January is not excused: the two Robert McGees came back at 1 M records
# with one birth date moved to 1981-01-01 (the other 1981-05-20); a person whose date one source
# gives as a year only waits in review instead.
DATES_APART_AT_HOME = """(l.t_dob <> r.t_dob AND l.t_dob IS DISTINCT FROM r.t_dob_swap AND NOT list_has_any(l.t_dob_digit, r.t_dob_digit)
        AND l.t_ym <> r.t_ym AND NOT list_contains(l.t_ym_near, r.t_ym))"""
DATES_APART = f"""({DATES_APART_AT_HOME} AND l.t_dob <> l.t_ydate AND r.t_dob <> r.t_ydate)"""
GIVEN_CONFLICT = """(l.t_given <> r.t_given AND NOT {nickname}
     AND NOT coalesce(list_contains(l.t_given_near, r.t_given), false)
     AND l.t_given IS DISTINCT FROM r.t_family AND l.t_family IS DISTINCT FROM r.t_given
     AND coalesce(lk_dice(l.bf_given, r.bf_given), 0) < 0.6
     AND NOT coalesce(list_has_any(l.t_given_letters, r.t_given_letters), false))""".format(
    nickname=nickname_sql("l.{}", "r.{}")
)
# The same SSN or identifier (document, record number: one type and system) is personal, not the
# household's: with it, a first name that conflicts on the same birth date, or birth dates apart under
# one first name, are typos of one person (a mother's SSN on her newborn still conflicts: both differ).
SAME_ID = """(l.t_ssn = r.t_ssn OR list_has_any(l.t_id_offer, r.t_id_accept) OR list_has_any(l.t_id_accept, r.t_id_offer))"""
HOUSEHOLD_CONFLICT = f"""(l.t_family = r.t_family OR l.t_street = r.t_street OR l.t_phone = r.t_phone
     OR l.t_email = r.t_email) AND (
    ({GIVEN_CONFLICT} AND NOT coalesce({SAME_ID} AND l.t_dob = r.t_dob, false))
    OR (NOT coalesce({SAME_ID} AND NOT coalesce({GIVEN_CONFLICT}, false), false) AND (
        (l.t_yob <> r.t_yob AND l.t_dob IS DISTINCT FROM r.t_dob_swap AND NOT coalesce(list_has_any(l.t_yband, r.t_yband), false)
         AND NOT list_has_any(l.t_dob_digit, r.t_dob_digit) AND NOT list_contains(l.t_ym_near, r.t_ym))
        OR (l.t_given <> r.t_given AND NOT coalesce(l.t_given = r.t_family AND l.t_family = r.t_given, false)
            AND {DATES_APART})
        OR ((l.t_street = r.t_street OR l.t_phone = r.t_phone) AND {DATES_APART_AT_HOME})))
    OR l.t_ssn <> r.t_ssn)"""


def decide(con: duckdb.DuckDBPyConnection, decisions: pa.Table | None) -> None:
    """TEMP TABLE lk_decided: lk_scored pairs with rule, household conflict, decision and method;
    pairs below REVIEW are dropped (nothing to keep) unless a rule holds or a reviewer decided them.

    Cost grows with the scored pairs (15 M at a million records), so no scored pair is joined to its
    records' tokens: rule pairs come from an equi-join of the tokens on the rules' keys, and only the
    kept pairs (a few percent) are joined to their tokens for the household guard."""
    _register_decisions(con, decisions)
    con.execute(f"CREATE OR REPLACE TEMP TABLE lk_rule_pairs AS {_RULE_PAIRS_SQL}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lk_decided AS
        WITH kept AS (
            SELECT s.*, p.rule, d.decision AS reviewer
            FROM lk_scored s LEFT JOIN lk_rule_pairs p USING (record_id_l, record_id_r)
            LEFT JOIN lk_clerical_decisions d USING (record_id_l, record_id_r)
            WHERE d.decision IS NOT NULL OR p.rule IS NOT NULL OR s.match_probability >= {REVIEW}
        ),
        guarded AS (
            SELECT kept.*, {HOUSEHOLD_CONFLICT} AS household_conflict
            FROM kept JOIN lk_tokens l ON l.record_id = kept.record_id_l
                      JOIN lk_tokens r ON r.record_id = kept.record_id_r
        )
        SELECT guarded.* EXCLUDE (reviewer),
            CASE WHEN reviewer IS NOT NULL THEN reviewer {DECISION_SQL} END AS decision,
            CASE WHEN reviewer IS NOT NULL THEN 'clerical' WHEN rule IS NOT NULL THEN 'deterministic'
                 ELSE 'probabilistic' END AS method
        FROM guarded
        """
    )
    con.execute("DROP TABLE lk_rule_pairs")


# Pairs of records agreeing on a deterministic rule (the first that holds names it): an equi-join on
# each rule's key, so its cost follows the records sharing a key, not the scored pairs.
_RULE_PAIRS_SQL = (
    "SELECT record_id_l, record_id_r, arg_min(rule, priority) AS rule FROM ("
    + " UNION ALL ".join(
        f"SELECT l.record_id AS record_id_l, r.record_id AS record_id_r, '{name}' AS rule, {i} AS priority "
        f"FROM lk_tokens l JOIN lk_tokens r ON {sql} AND l.record_id < r.record_id"
        for i, (name, sql) in enumerate(DETERMINISTIC_RULES.items())
    )
    + ") GROUP BY ALL"
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
    """A record without a birth year cannot tell two namesakes apart, so its probabilistic links to dated
    records may reach one birth year only: that of its best such link (highest probability). Its links
    to records of another year go to review (hold_reason 'undated_bridge'); `william jones`, no date,
    matched a William Jones born 1851 and one born 1858 (historical set). Links to records of the best
    link's year stay: holding every link but the best (before) held 32,232 links on the historical set,
    32,167 of them true matches. Returns the links held (TEMP TABLE lk_held)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE lk_held AS
        WITH mixed AS (
            SELECT p.record_id_l, p.record_id_r, p.match_probability,
                   CASE WHEN l.t_yob IS NULL THEN p.record_id_l ELSE p.record_id_r END AS undated,
                   coalesce(l.t_yob, r.t_yob) AS year
            FROM lk_pairs p JOIN lk_tokens l ON l.record_id = p.record_id_l
                            JOIN lk_tokens r ON r.record_id = p.record_id_r
            WHERE p.decision = 'match' AND p.method = 'probabilistic' AND (l.t_yob IS NULL) <> (r.t_yob IS NULL)
        ),
        ranked AS (
            SELECT *, first_value(year) OVER (PARTITION BY undated ORDER BY match_probability DESC,
                                              record_id_l, record_id_r) AS best_year
            FROM mixed
        )
        SELECT record_id_l, record_id_r FROM ranked WHERE year <> best_year
        """
    )
    con.execute(
        "UPDATE lk_pairs SET decision = 'review', hold_reason = 'undated_bridge' FROM lk_held h "
        "WHERE lk_pairs.record_id_l = h.record_id_l AND lk_pairs.record_id_r = h.record_id_r"
    )
    return con.execute("SELECT count(*) FROM lk_held").fetchone()[0]


def add_decided_pairs(con: duckdb.DuckDBPyConnection) -> int:
    """Reviewer decisions (lk_clerical_decisions) on pairs this run neither scored nor kept, both of
    whose records are still linked: added to lk_pairs as clerical pairs, so that a decision outlives a
    record edited until no blocking rule pairs it with the other any more ('match' still links,
    'non_match' still separates). Returns the pairs added."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE lk_decided_missing AS
        SELECT d.record_id_l, d.record_id_r, d.decision FROM lk_clerical_decisions d
        ANTI JOIN lk_pairs p USING (record_id_l, record_id_r)
        WHERE d.record_id_l IN (SELECT record_id FROM lk_tokens) AND d.record_id_r IN (SELECT record_id FROM lk_tokens)
        """
    )
    con.execute("INSERT INTO lk_pairs BY NAME SELECT *, 'clerical' AS method FROM lk_decided_missing")
    return con.execute("SELECT count(*) FROM lk_decided_missing").fetchone()[0]


def connected_components(con: duckdb.DuckDBPyConnection, deduplicated: tuple[str, ...] = ()) -> int:
    """TEMP TABLE lk_cluster(record_id, cluster): cluster = the smallest record_id reachable through
    'match' edges of lk_pairs (label propagation; as many rounds as the longest chain), then the
    components holding a conflict split (split_conflicts; `deduplicated`: sources whose records are
    kept apart). Returns rounds."""
    con.execute("ALTER TABLE lk_pairs ADD COLUMN IF NOT EXISTS hold_reason VARCHAR")
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
            split_conflicts(con, deduplicated)
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
