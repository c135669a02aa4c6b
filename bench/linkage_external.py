"""Linkage quality on an external CSV with true clusters (public linkage benchmarks).

The records go through the pipeline's own code path, `crosswalk.link()`: tokens, model (trained on
the file itself when it has >= 500 records), decisions, clusters. The CSV is read from the path
given, never downloaded. Columns are mapped onto person_pii fields with --map CSV_COLUMN=FIELD;
FIELD is a person_pii column (given_name, family_name, birth_date, sex, ssn, address_line, city,
zip, phone, email, maiden_name) or a short alias (given, family, dob, street, surname, first_name).

    .venv/bin/python bench/linkage_external.py            # fake1000 with email
    .venv/bin/python bench/linkage_external.py --map first_name=given surname=family dob=dob city=city
    .venv/bin/python bench/linkage_external.py data.csv --map fn=given ln=family --truth entity --id rec_id
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.quality import pair_scores
from rwe_assets.lib.linkage.tokens import PII_COLUMNS

KEY = "external-benchmark-key-not-secret"
DEFAULT_CSV = (
    Path(__file__).resolve().parents[2]
    / "shared/data/linkage_splink_fake1000/fake_1000_from_splink_demos.csv"
)
DEFAULT_MAP = ["first_name=given", "surname=family", "dob=birth_date", "city=city", "email=email"]
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
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ext_raw AS SELECT *, row_number() OVER () AS ext_row "
        "FROM read_csv(?, all_varchar = true, header = true)",
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
    scores = pair_scores(con)
    review_true = con.execute(
        "SELECT count(*) FROM lk_pairs p JOIN lk_truth a ON a.record_id = p.record_id_l "
        "JOIN lk_truth b ON b.record_id = p.record_id_r WHERE p.decision = 'review' AND a.true_id = b.true_id"
    ).fetchone()[0]
    return {
        "records": records,
        "seconds": seconds,
        "review": result.counts["pairs_for_review"],
        "review_true": review_true,
        "trained": result.trained,
        **scores,
    }


HEADER = (
    f"{'records':>8} {'true pairs':>10} {'precision':>9} {'recall':>7} {'F1':>7} "
    f"{'review (true)':>14} {'seconds':>8}  fields"
)


def line(row: dict, mapping: dict[str, str]) -> str:
    review = f"{row['review']:,} ({row['review_true']:,})"
    return (
        f"{row['records']:>8,} {row['true_pairs']:>10,.0f} {row['precision']:>9.4f} {row['recall']:>7.4f} "
        f"{row['f1']:>7.4f} {review:>14} {row['seconds']:>8.1f}  {','.join(mapping)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--map", nargs="+", default=DEFAULT_MAP, metavar="CSV_COLUMN=FIELD")
    parser.add_argument("--truth", default="cluster", help="column holding the true entity")
    parser.add_argument("--id", default=None, help="record id column (default: unique_id if present)")
    parser.add_argument("--source", default=None, help="source system column (default: one source)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.csv.exists():
        parser.error(f"{args.csv} does not exist (this script reads a local file, it never downloads)")
    mapping = parse_mapping(args.map)
    id_column = args.id
    if id_column is None:
        header = duckdb.sql("SELECT * FROM read_csv(?, all_varchar = true) LIMIT 0", params=[str(args.csv)])
        id_column = "unique_id" if "unique_id" in header.columns else None
    row = evaluate(args.csv, mapping, args.truth, id_column, args.source, args.threads)
    print(HEADER)
    print(line(row, mapping), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
