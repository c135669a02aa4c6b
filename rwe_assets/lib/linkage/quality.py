"""Linkage quality: precision, recall and F1 of record pairs against ground truth, false merges of
twins and household members, match rates per source pair, the distribution of match weights.

Ground truth is the generator's truth/person_records.csv (SOURCE, SOURCE_PERSON_ID, TRUE_PERSON_ID;
persons.csv adds HOUSEHOLD_ID and TWIN_OF), or any table with record_id and true_id. Pairwise
measures count pairs of records: predicted pairs share a person_id, true pairs a true person.
The result is long: (metric, dimension, value), so new measures need no schema change.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib.truth_files import PERSON_RECORDS, PERSONS

F1_THRESHOLD = 0.98
PRECISION_THRESHOLD = 0.995
MIN_TRUE_PAIRS = 50  # fewer true pairs than this say too little about F1 for a check to judge


def verdicts(metric) -> dict[str, tuple[bool | None, str]]:
    """check name -> (passed, reason) from measures read with metric(name, dimension); passed is None
    when the check cannot be evaluated (no ground truth, or too little of it): never a pass.

    precision_vs_ground_truth: precision of the predicted pairs among records with truth; a single
    false merge of a small population is enough to fail it, so it needs predicted pairs only.
    f1_vs_ground_truth: F1, judged from MIN_TRUE_PAIRS true pairs on."""
    if metric("truth_records", "truth") is None:
        reason = "not evaluated: no ground truth"
        return {"precision_vs_ground_truth": (None, reason), "f1_vs_ground_truth": (None, reason)}
    out: dict[str, tuple[bool | None, str]] = {}
    precision, predicted = metric("precision", "truth"), metric("predicted_pairs", "truth") or 0
    if predicted == 0:
        out["precision_vs_ground_truth"] = (None, "not evaluated: no linked pair among records with truth")
    else:
        passed = precision >= PRECISION_THRESHOLD
        out["precision_vs_ground_truth"] = (passed, f"precision {precision:.4f} vs {PRECISION_THRESHOLD}")
    f1, true_pairs = metric("f1", "truth"), metric("true_pairs", "truth") or 0
    if true_pairs < MIN_TRUE_PAIRS:
        out["f1_vs_ground_truth"] = (None, f"not evaluated: {true_pairs:.0f} true pairs < {MIN_TRUE_PAIRS}")
    else:
        out["f1_vs_ground_truth"] = (f1 >= F1_THRESHOLD, f"F1 {f1:.4f} vs {F1_THRESHOLD}")
    return out


def register_generator_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> bool:
    """TEMP TABLE lk_truth(record_id, true_id, household_id, twin_of); False when there is no truth."""
    records = Path(truth_dir) / PERSON_RECORDS
    if not records.exists():
        return False
    persons = Path(truth_dir) / PERSONS
    paths = (
        {"records": str(records), "persons": str(persons)} if persons.exists() else {"records": str(records)}
    )
    household = (
        "LEFT JOIN read_csv($persons, all_varchar = true) p ON p.TRUE_PERSON_ID = r.TRUE_PERSON_ID"
        if persons.exists()
        else "LEFT JOIN (SELECT NULL::VARCHAR AS TRUE_PERSON_ID, NULL::VARCHAR AS HOUSEHOLD_ID, NULL::VARCHAR AS TWIN_OF) p ON false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE lk_truth AS
        SELECT DISTINCT r.SOURCE || '|' || r.SOURCE_PERSON_ID AS record_id, r.TRUE_PERSON_ID AS true_id,
               p.HOUSEHOLD_ID AS household_id, nullif(p.TWIN_OF, '') AS twin_of
        FROM read_csv($records, all_varchar = true) r {household}""",
        paths,  # bound, not written into the SQL: a folder name may hold a quote
    )
    return True


def pair_scores(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Pairwise precision/recall/F1 of lk_crosswalk against lk_truth (records present in both)."""
    row = con.execute(
        """
        WITH j AS (
            SELECT c.person_id, t.true_id, t.household_id, t.twin_of
            FROM lk_crosswalk c JOIN lk_truth t ON t.record_id = c.source_system || '|' || c.source_person_id
        ),
        pred AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY person_id)),
        truth AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY true_id)),
        tp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY person_id, true_id)),
        mixed AS (  -- persons holding records of several true people, and how they are related
            SELECT person_id, count(DISTINCT true_id) AS people, count(DISTINCT household_id) AS households,
                   bool_or(twin_of IS NOT NULL AND twin_of IN (SELECT true_id FROM j j2 WHERE j2.person_id = j.person_id))
                       AS twins
            FROM j GROUP BY person_id HAVING count(DISTINCT true_id) > 1
        )
        SELECT (SELECT count(*) FROM j), pred.v, truth.v, tp.v,
               (SELECT count(*) FROM mixed), (SELECT count(*) FROM mixed WHERE twins),
               (SELECT count(*) FROM mixed WHERE households = 1)
        FROM pred, truth, tp
        """
    ).fetchone()
    records, pred, true, tp, mixed, twins, household = (v or 0 for v in row)
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "truth_records": records,
        "true_pairs": true,
        "predicted_pairs": pred,
        "true_positive_pairs": tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "persons_merging_people": mixed,
        "persons_merging_twins": twins,
        "persons_merging_household_members": household,
    }


def blocking_recall(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Share of the true pairs this run had to compare (at least one record new: lk_tokens_new) that
    blocking brought to comparison (in lk_scored). A pair blocking misses can never be linked, so
    this bounds recall; it needs ground truth (lk_truth)."""
    row = con.execute(
        """
        WITH t AS (SELECT k.record_id, t.true_id FROM lk_tokens k JOIN lk_truth t USING (record_id)),
        fresh AS (SELECT record_id FROM lk_tokens_new),
        pairs AS (
            SELECT a.record_id AS l, b.record_id AS r FROM t a JOIN t b
                ON a.true_id = b.true_id AND a.record_id < b.record_id
            WHERE a.record_id IN (SELECT record_id FROM fresh) OR b.record_id IN (SELECT record_id FROM fresh)
        )
        SELECT count(*), count(s.record_id_l)
        FROM pairs LEFT JOIN lk_scored s ON s.record_id_l = pairs.l AND s.record_id_r = pairs.r
        """
    ).fetchone()
    to_compare, compared = row
    return {
        "true_pairs_to_compare": to_compare,
        "true_pairs_compared": compared,
        "blocking_recall": compared / to_compare if to_compare else 1.0,
    }


def truth_free_diagnostics(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, float]]:
    """Measures that need no ground truth: comparisons per new record (blocking cost), the grey-zone
    share (pairs for review among pairs kept as match or review), persons by number of records
    (cluster sizes; one huge cluster is the sign of a chain of false merges)."""
    new = con.execute("SELECT count(*) FROM lk_tokens_new").fetchone()[0]
    scored = con.execute("SELECT count(*) FROM lk_scored").fetchone()[0]
    match, review = con.execute(
        "SELECT count(*) FILTER (WHERE decision = 'match'), count(*) FILTER (WHERE decision = 'review') FROM lk_pairs"
    ).fetchone()
    rows = [
        ("comparisons_per_new_record", "", scored / new if new else 0.0),
        ("grey_zone_share", "", review / (match + review) if match + review else 0.0),
    ]
    rows += con.execute(
        "SELECT 'persons_by_records', CAST(least(n, 10) AS VARCHAR) || CASE WHEN n >= 10 THEN '+' ELSE '' END, "
        "count(*) FROM (SELECT count(*) AS n FROM lk_crosswalk GROUP BY person_id) GROUP BY ALL ORDER BY 2"
    ).fetchall()
    return rows


def metrics_table(con: duckdb.DuckDBPyConnection, counts: dict[str, float], truth: bool) -> pa.Table:
    """All measures as rows (metric, dimension, value)."""
    rows = [(name, "", float(value)) for name, value in counts.items()]
    if truth:
        rows += [(name, "truth", float(value)) for name, value in pair_scores(con).items()]
        rows += [(name, "truth", float(value)) for name, value in blocking_recall(con).items()]
    rows += con.execute(
        """
        WITH rec AS (SELECT person_id, source_system FROM lk_crosswalk),
        sources AS (SELECT DISTINCT source_system FROM rec)
        SELECT 'match_rate', a.source_system || '->' || b.source_system,
               avg(CASE WHEN EXISTS (SELECT 1 FROM rec o WHERE o.person_id = r.person_id
                                     AND o.source_system = b.source_system) THEN 1.0 ELSE 0.0 END)
        FROM rec r JOIN sources a ON a.source_system = r.source_system, sources b
        WHERE a.source_system <> b.source_system GROUP BY ALL ORDER BY 2
        """
    ).fetchall()
    rows += truth_free_diagnostics(con)
    rows += con.execute(
        "SELECT 'pairs_by_match_weight', CAST(CAST(floor(greatest(least(match_weight, 30), -30)) AS INTEGER) "
        "AS VARCHAR), count(*) FROM lk_scored GROUP BY ALL ORDER BY 2"
    ).fetchall()
    return pa.table(
        {
            "metric": [r[0] for r in rows],
            "dimension": [r[1] for r in rows],
            "value": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
