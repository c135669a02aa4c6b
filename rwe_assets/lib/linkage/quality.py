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

F1_THRESHOLD = 0.98
MIN_TRUE_PAIRS = 50  # fewer true pairs than this say too little about F1 for a check to judge


def register_generator_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> bool:
    """TEMP TABLE lk_truth(record_id, true_id, household_id, twin_of); False when there is no truth."""
    records = Path(truth_dir) / "person_records.csv"
    if not records.exists():
        return False
    persons = Path(truth_dir) / "persons.csv"
    household = (
        f"LEFT JOIN read_csv('{persons}', all_varchar = true) p ON p.TRUE_PERSON_ID = r.TRUE_PERSON_ID"
        if persons.exists()
        else "LEFT JOIN (SELECT NULL AS TRUE_PERSON_ID, NULL AS HOUSEHOLD_ID, NULL AS TWIN_OF) p ON false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE lk_truth AS
        SELECT DISTINCT r.SOURCE || '|' || r.SOURCE_PERSON_ID AS record_id, r.TRUE_PERSON_ID AS true_id,
               p.HOUSEHOLD_ID AS household_id, nullif(p.TWIN_OF, '') AS twin_of
        FROM read_csv('{records}', all_varchar = true) r {household}"""
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


def metrics_table(con: duckdb.DuckDBPyConnection, counts: dict[str, float], truth: bool) -> pa.Table:
    """All measures as rows (metric, dimension, value)."""
    rows = [(name, "", float(value)) for name, value in counts.items()]
    if truth:
        rows += [(name, "truth", float(value)) for name, value in pair_scores(con).items()]
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
