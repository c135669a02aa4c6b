"""Linkage quality on public benchmarks with true clusters, beside a plain Splink baseline.

Our linkage runs through the pipeline's own code path, `crosswalk.link()` (tokens, model trained on
the file itself when it has >= 500 records, decisions, clusters), with ONE configuration for every
data set: only the mapping of the file's columns onto person_pii fields differs. The baseline is
Splink configured the way its documentation sets up such person data (same fields; its standard
comparisons, term-frequency adjustments, blocking on first name + dob and on surname, EM, clusters
at p >= 0.95). Both print precision, recall, F1 and blocking recall (share of true pairs that
reach comparison). Files are read from ../shared/data, never downloaded.

    .venv/bin/python bench/linkage_external.py                       # the three public sets
    .venv/bin/python bench/linkage_external.py --sets fake1000       # one of them
    .venv/bin/python bench/linkage_external.py data.csv --map fn=given ln=family --truth entity --id rec_id
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from rwe_assets.lib.linkage import cluster
from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.quality import blocking_recall, pair_scores
from rwe_assets.lib.linkage.tokens import PII_COLUMNS

KEY = "external-benchmark-key-not-secret"
SHARED = Path(__file__).resolve().parents[2] / "shared/data"
DEFAULT_CSV = SHARED / "linkage_splink_fake1000/fake_1000_from_splink_demos.csv"
DEFAULT_MAP = ["first_name=given", "surname=family", "dob=birth_date", "city=city", "email=email"]
# name -> (file, column mapping, truth column, id column): the mapping names columns, nothing is tuned
DATASETS = {
    "fake1000": (DEFAULT_CSV, DEFAULT_MAP, "cluster", "unique_id"),
    "fake_20000": (SHARED / "linkage_public/fake_20000.csv", DEFAULT_MAP, "group", "unique_id"),
    "historical_50k": (
        SHARED / "linkage_public/historical_figures_with_errors_50k.parquet",
        ["first_name=given", "surname=family", "dob=birth_date", "birth_place=city", "postcode_fake=zip",
         "gender=sex"],
        "cluster",
        "unique_id",
    ),
}  # fmt: skip
ALIASES = {
    "given": "given_name",
    "first_name": "given_name",
    "family": "family_name",
    "surname": "family_name",
    "last_name": "family_name",
    "maiden": "maiden_name",
    "dob": "birth_date",
    "street": "address_line",
    "address": "address_line",
    "postcode": "zip",
    "gender": "sex",
}
FIELDS = tuple(c for c in PII_COLUMNS if c not in ("source_system", "source_person_id", "_batch_id"))


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """['first_name=given', ...] -> {'given_name': 'first_name', ...} (field -> CSV column)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        field = ALIASES.get(field.strip().lower(), field.strip().lower())
        if not sep or not column.strip():
            raise ValueError(f"--map: expected CSV_COLUMN=FIELD, found {pair!r}")
        if field not in FIELDS:
            raise ValueError(f"--map: unknown field {field!r} in {pair!r}; fields: {', '.join(FIELDS)}")
        if field in mapping:
            raise ValueError(f"--map: field {field!r} mapped twice")
        mapping[field] = column.strip()
    return mapping


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def register(
    con: duckdb.DuckDBPyConnection,
    csv_path: Path,
    mapping: dict[str, str],
    truth: str,
    id_column: str | None = None,
    source_column: str | None = None,
) -> int:
    """TEMP TABLE person_pii (mapped columns, text) and lk_truth(record_id, true_id) from the CSV;
    returns the record count. Without an id column the row number is the record id."""
    reader = (
        "(SELECT COLUMNS(*)::VARCHAR FROM read_parquet(?))"
        if Path(csv_path).suffix == ".parquet"
        else "read_csv(?, all_varchar = true, header = true)"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ext_raw AS SELECT *, row_number() OVER () AS ext_row FROM {reader}",
        [str(csv_path)],
    )
    present = {row[0] for row in con.execute("DESCRIBE ext_raw").fetchall()}
    wanted = [*mapping.values(), truth] + [c for c in (id_column, source_column) if c]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ValueError(
            f"{csv_path}: no column {', '.join(missing)} (columns: {', '.join(sorted(present))})"
        )
    source = f"coalesce({_quote(source_column)}, 'external')" if source_column else "'external'"
    ident = _quote(id_column) if id_column else "CAST(ext_row AS VARCHAR)"
    con.execute("CREATE OR REPLACE TEMP TABLE ext_id AS SELECT ? AS expr", [ident])
    fields = ", ".join(f"{_quote(column)} AS {field}" for field, column in mapping.items())
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE person_pii AS SELECT {source} AS source_system, {ident} AS "
        f"source_person_id, 'external' AS _batch_id{', ' + fields if fields else ''} FROM ext_raw"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ext_truth AS SELECT {source} || '|' || {ident} AS record_id, "
        f"{_quote(truth)} AS true_id, NULL::VARCHAR AS household_id, NULL::VARCHAR AS twin_of FROM ext_raw"
    )
    duplicates = con.execute("SELECT count(*) - count(DISTINCT record_id) FROM ext_truth").fetchone()[0]
    if duplicates:
        raise ValueError(f"{csv_path}: {duplicates} duplicate record ids")
    return con.execute("SELECT count(*) FROM person_pii").fetchone()[0]


def evaluate(
    csv_path: Path,
    mapping: dict[str, str],
    truth: str,
    id_column: str | None = None,
    source_column: str | None = None,
    threads: int = 2,
) -> dict:
    con = duckdb.connect(config={"threads": threads})
    records = register(con, csv_path, mapping, truth, id_column, source_column)
    with tempfile.TemporaryDirectory(prefix="linkage_external_") as lake_dir:
        start = time.perf_counter()
        result = link(con, Path(lake_dir), KEY)
        seconds = time.perf_counter() - start
    con.execute("CREATE OR REPLACE TEMP TABLE lk_truth AS SELECT * FROM ext_truth")
    scores = {**pair_scores(con), **blocking_recall(con)}
    review_true = con.execute(
        "SELECT count(*) FROM lk_pairs p JOIN lk_truth a ON a.record_id = p.record_id_l "
        "JOIN lk_truth b ON b.record_id = p.record_id_r WHERE p.decision = 'review' AND a.true_id = b.true_id"
    ).fetchone()[0]
    held = con.execute(  # links clustering held (cluster.hold_bridges, split_conflicts), true ones among them
        "SELECT p.hold_reason, count(*), count(*) FILTER (WHERE a.true_id = b.true_id) FROM lk_pairs p "
        "JOIN lk_truth a ON a.record_id = p.record_id_l JOIN lk_truth b ON b.record_id = p.record_id_r "
        "WHERE p.hold_reason IS NOT NULL GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return {
        "records": records,
        "seconds": seconds,
        "held": held,
        "lost": con.execute(LOST_SQL).fetchall(),
        "review": result.counts["pairs_for_review"],
        "review_true": review_true,
        "trained": result.trained,
        **scores,
    }


# True pairs whose records ended in two persons, by the first step that lost them (cf. bench/linkage_two_site.py).
LOST_SQL = f"""
WITH t AS (SELECT record_id, true_id FROM lk_truth),
person AS (SELECT source_system || '|' || source_person_id AS record_id, person_id FROM lk_crosswalk),
lost AS (
    SELECT a.record_id AS l, b.record_id AS r FROM t a JOIN t b ON a.true_id = b.true_id AND a.record_id < b.record_id
    JOIN person pa ON pa.record_id = a.record_id JOIN person pb ON pb.record_id = b.record_id
    WHERE pa.person_id <> pb.person_id
)
SELECT CASE WHEN s.record_id_l IS NULL THEN 'never compared'
    WHEN p.record_id_l IS NULL OR p.decision = 'non_match' THEN 'p < {cluster.REVIEW}'
    WHEN p.hold_reason IS NOT NULL THEN 'held ' || p.hold_reason
    WHEN p.decision = 'review' AND p.household_conflict THEN 'household guard'
    WHEN p.decision = 'review' AND p.match_probability >= {cluster.ACCEPT} THEN 'names alone'
    WHEN p.decision = 'review' THEN 'grey zone' ELSE 'linked apart' END AS why, count(*) AS n
FROM lost LEFT JOIN lk_scored s ON s.record_id_l = lost.l AND s.record_id_r = lost.r
LEFT JOIN lk_pairs p ON p.record_id_l = lost.l AND p.record_id_r = lost.r
GROUP BY why ORDER BY n DESC
"""
# Splink's column names for the fields, and its documented comparison for each
BASELINE_COLUMNS = {
    "given_name": "first_name",
    "family_name": "surname",
    "birth_date": "dob",
    "city": "city",
    "email": "email",
    "zip": "postcode",
    "sex": "sex",
}


def _baseline_comparisons(present: set[str]) -> list:
    import splink.comparison_library as cl

    options = {
        "first_name": lambda: cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        "surname": lambda: cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        "dob": lambda: cl.DateOfBirthComparison("dob", input_is_string=True),
        "city": lambda: cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        "email": lambda: cl.EmailComparison("email"),
        "postcode": lambda: cl.PostcodeComparison("postcode"),
        "sex": lambda: cl.ExactMatch("sex"),
    }
    return [make() for column, make in options.items() if column in present]


def baseline(con: duckdb.DuckDBPyConnection, mapping: dict[str, str]) -> dict:
    """Plain Splink on ext_raw as its documentation sets up person deduplication: the same fields
    (empty strings as NULL, no other cleaning), standard comparison library levels with term-frequency
    adjustments on names and city, prior from first name + surname (recall 0.7), u from 1 M random
    pairs, EM blocked on first name + surname and on dob, predictions blocked on first name + dob and
    on surname, clusters at p >= 0.95. Scores against ext_truth, with blocking recall."""
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    columns = {BASELINE_COLUMNS[f]: c for f, c in mapping.items() if f in BASELINE_COLUMNS}
    select = ", ".join(f"nullif(trim({_quote(c)}), '') AS {name}" for name, c in columns.items())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE base_input AS SELECT record_id AS unique_id, "
        f"{select} FROM ext_raw JOIN ext_truth ON ext_truth.record_id = 'external|' || {_ident(con)}"
    )
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=_baseline_comparisons(set(columns)),
        blocking_rules_to_generate_predictions=[block_on("first_name", "dob"), block_on("surname")],
        retain_intermediate_calculation_columns=False,
    )
    start = time.perf_counter()
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register("base_input"), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (block_on("first_name", "surname"), block_on("dob")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.95)
    seconds = time.perf_counter() - start
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_crosswalk AS SELECT 'external' AS source_system, "
        f"split_part(unique_id, '|', 2) AS source_person_id, cluster_id AS person_id FROM {clusters.physical_name}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_scored AS SELECT least(unique_id_l, unique_id_r) AS record_id_l, "
        f"greatest(unique_id_l, unique_id_r) AS record_id_r FROM {predictions.physical_name}"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE lk_tokens_new AS SELECT unique_id AS record_id FROM base_input")
    con.execute("CREATE OR REPLACE TEMP TABLE lk_tokens AS SELECT unique_id AS record_id FROM base_input")
    con.execute("CREATE OR REPLACE TEMP TABLE lk_truth AS SELECT * FROM ext_truth")
    return {"seconds": seconds, **pair_scores(con), **blocking_recall(con)}


def _ident(con: duckdb.DuckDBPyConnection) -> str:
    """The expression of ext_raw that register() used as the record id (kept in ext_id)."""
    return con.execute("SELECT expr FROM ext_id").fetchone()[0]


HEADER = (
    f"{'data set':<15} {'linker':<9} {'records':>8} {'true pairs':>10} {'precision':>9} {'recall':>7} "
    f"{'F1':>7} {'blocking':>8} {'seconds':>8}"
)


def line(row: dict, name: str = "", linker: str = "ours") -> str:
    return (
        f"{name:<15} {linker:<9} {row['records']:>8,} {row['true_pairs']:>10,.0f} {row['precision']:>9.4f} "
        f"{row['recall']:>7.4f} {row['f1']:>7.4f} {row['blocking_recall']:>8.4f} {row['seconds']:>8.1f}"
    )


def compare(name: str, path: Path, mapping: dict[str, str], truth: str, id_column: str | None, threads: int):
    """Ours, then the baseline, on one file: two printed lines."""
    ours = evaluate(path, mapping, truth, id_column, None, threads)
    print(line(ours, name, "ours"), flush=True)
    held = ", ".join(f"{why} {n:,} ({true:,} true)" for why, n, true in ours["held"]) or "none"
    print(f"{'':<15} links held by clustering: {held}", flush=True)
    lost = ", ".join(f"{why} {n:,}" for why, n in ours["lost"]) or "none"
    print(f"{'':<15} true pairs not linked (first step that lost them): {lost}", flush=True)
    con = duckdb.connect(config={"threads": threads})
    records = register(con, path, mapping, truth, id_column)
    theirs = baseline(con, mapping)
    print(line({"records": records, **theirs}, name, "splink"), flush=True)
    return ours, theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=None, help="a file of your own (CSV/parquet)")
    parser.add_argument("--sets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--map", nargs="+", default=DEFAULT_MAP, metavar="CSV_COLUMN=FIELD")
    parser.add_argument("--truth", default="cluster", help="column holding the true entity")
    parser.add_argument("--id", default=None, help="record id column (default: unique_id if present)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.getLogger("splink").setLevel(logging.ERROR)  # EM progress and "level not observed" notes
    jobs = (
        [(args.csv.name, args.csv, args.map, args.truth, args.id or "unique_id")]
        if args.csv
        else [(name, *DATASETS[name]) for name in args.sets]
    )
    print(HEADER)
    for name, path, mapping, truth, id_column in jobs:
        if not Path(path).exists():
            parser.error(f"{path} does not exist (this script reads local files, it never downloads)")
        compare(name, Path(path), parse_mapping(mapping), truth, id_column, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
