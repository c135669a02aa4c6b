"""Two-site linkage benchmark through the pipeline: a file with true clusters, split into two EHR sites
written as Synthea patients.csv, landed, ingested, staged and linked as any site's batch would be.

A benchmark file (CSV or Parquet) with a true-cluster column is split so that the records of one true
person alternate between the two sites (a FEBRL-style file, one original and one duplicate per person,
gives one record per site). Each site is written as one Synthea v3 patients.csv (every column the
registry requires, blank where the file has nothing) into landing/<site>/<batch>/ of a scratch data
directory; the second site is declared in that directory's sources.yaml `like: ehr_site_a`, as a user
adds a site. Then raw ingest, staging and linkage run through rwe_assets' library functions (as
bench/pipeline.py does; no Dagster), and the script prints: records in, rows quarantined by raw ingest
and by staging (per reason), records reaching linkage, blocking recall, precision/recall/F1 of the
cross-site pairs (and of all pairs), and what lost each true cross-site pair that was not linked:
quarantine, blocking, scoring (p < 0.50), review (the model's grey zone, names alone, the household
guard) or a link clustering held (per hold_reason). With --compare, bench/linkage_external.py's
evaluate() runs on the same records and fields (one source, no landing) for the same all-pairs figures.

    .venv/bin/python bench/linkage_two_site.py                            # the public sets and the fixture
    .venv/bin/python bench/linkage_two_site.py --sets fake1000 --compare
    .venv/bin/python bench/linkage_two_site.py febrl.csv --truth-pattern 'rec-([0-9]+)-' --id rec_id \\
        --map given_name=FIRST surname=LAST street_number+address_1+address_2=ADDRESS suburb=CITY \\
              postcode=ZIP state=STATE date_of_birth=BIRTHDATE soc_sec_id=SSN

A mapping is SOURCE_COLUMN=SYNTHEA_COLUMN; several source columns joined by '+' fill one Synthea column
(words joined by a space, blanks skipped). Files are read from disk, never downloaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from rwe_assets.lib.linkage import cluster
from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons
from rwe_assets.lib.linkage.quality import blocking_recall, pair_scores
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.staging.build import build_staging, staging_connection

KEY = "two-site-benchmark-key-not-secret"
SITES = ("ehr_site_a", "ehr_site_c")  # the bundled Synthea site and one declared like it
BATCH = "2026-12"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared/data"
FIXTURE = REPO / "rwe_assets_tests/data/linkage_two_site/febrl_like.csv"
FAKE_MAP = ("first_name=FIRST", "surname=LAST", "dob=BIRTHDATE", "city=CITY", "email=EMAIL")
FEBRL_MAP = (
    "given_name=FIRST", "surname=LAST", "street_number+address_1+address_2=ADDRESS", "suburb=CITY",
    "postcode=ZIP", "state=STATE", "date_of_birth=BIRTHDATE", "soc_sec_id=SSN",
)  # fmt: skip
# Columns the synthea_csv profile reads beyond Synthea's own (a site's export may add them): EMAIL.
OPTIONAL_COLUMNS = ("EMAIL",)
# name -> (file, mapping, truth column, id column). The fake sets' email lands in the optional EMAIL column.
DATASETS = {
    "febrl_fixture": (FIXTURE, FEBRL_MAP, "cluster", "rec_id"),
    "fake1000": (SHARED / "linkage_splink_fake1000/fake_1000_from_splink_demos.csv", FAKE_MAP, "cluster", "unique_id"),
    "fake_20000": (SHARED / "linkage_public/fake_20000.csv", FAKE_MAP, "group", "unique_id"),
    "historical_50k": (
        SHARED / "linkage_public/historical_figures_with_errors_50k.parquet",
        ("first_name=FIRST", "surname=LAST", "dob=BIRTHDATE", "birth_place=CITY", "postcode_fake=ZIP", "gender=GENDER"),
        "cluster",
        "unique_id",
    ),
}  # fmt: skip
# Synthea patients.csv column -> staging.person_pii field (the synthea_csv profile), for --compare.
PII_FIELD = {
    "FIRST": "given_name", "LAST": "family_name", "MAIDEN": "maiden_name", "BIRTHDATE": "birth_date",
    "GENDER": "sex", "SSN": "ssn", "ADDRESS": "address_line", "CITY": "city", "STATE": "state", "ZIP": "zip",
    "DRIVERS": "drivers_license", "PASSPORT": "passport", "EMAIL": "email",
}  # fmt: skip


@dataclass
class Result:
    records: int = 0
    ingest_quarantined: int = 0
    staging_quarantined: dict[str, int] = field(default_factory=dict)
    linked_records: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    cross: dict[str, float] = field(default_factory=dict)
    all_pairs: dict[str, float] = field(default_factory=dict)
    losses: list[tuple[str, int]] = field(default_factory=list)
    external: dict | None = None


def patient_columns() -> list[str]:
    return list(load_registry().get("ehr_site_a").entity("patients").required_columns)


def parse_mapping(pairs) -> dict[str, list[str]]:
    """['a+b=ADDRESS', ...] -> {'ADDRESS': ['a', 'b']} (Synthea column -> source columns)."""
    columns = {*patient_columns(), *OPTIONAL_COLUMNS}
    mapping: dict[str, list[str]] = {}
    for pair in pairs:
        sources, sep, target = pair.rpartition("=")
        target = target.strip().upper()
        if not sep or not sources.strip():
            raise ValueError(f"--map: expected SOURCE_COLUMN[+COLUMN...]=SYNTHEA_COLUMN, found {pair!r}")
        if target not in columns or target == "Id":
            raise ValueError(f"--map: {target!r} is not a Synthea patients.csv column one can map")
        if target in mapping:
            raise ValueError(f"--map: {target} mapped twice")
        mapping[target] = [s.strip() for s in sources.split("+")]
    return mapping


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_and_split(con, path: Path, truth: str | None, truth_pattern: str | None, id_column: str) -> int:
    """TEMP TABLE ts_in: the file as text with its record id (ts_id), true id (ts_true: the truth column,
    or the first group of --truth-pattern on the id) and site (ts_site 0/1). The records of one true
    person alternate between the sites in id order; where a person starts is a hash of its true id, so
    single records spread evenly."""
    reader = (
        "(SELECT COLUMNS(*)::VARCHAR FROM read_parquet($path))"
        if path.suffix == ".parquet"
        else "read_csv($path, all_varchar = true, header = true)"
    )
    true_id = f"regexp_extract({_q(id_column)}, $pattern, 1)" if truth_pattern else _q(truth)
    params = {"path": str(path), **({"pattern": truth_pattern} if truth_pattern else {})}
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE ts_in AS
        WITH f AS (SELECT *, trim({_q(id_column)}) AS ts_id, nullif(trim({true_id}), '') AS ts_true FROM {reader})
        SELECT *, (row_number() OVER (PARTITION BY ts_true ORDER BY ts_id) + hash(ts_true)) % 2 AS ts_site
        FROM f""",
        params,
    )
    no_id, duplicates = con.execute(
        "SELECT count(*) FILTER (WHERE coalesce(ts_id, '') = '' OR ts_true IS NULL), "
        "count(*) - count(DISTINCT ts_id) FROM ts_in"
    ).fetchone()
    if no_id or duplicates:
        raise ValueError(f"{path}: {no_id} records without id or truth, {duplicates} duplicate ids")
    return con.execute("SELECT count(*) FROM ts_in").fetchone()[0]


def _column_sql(sources: list[str]) -> str:
    """One Synthea column from one source column, or several joined by a space (blanks skipped)."""
    if len(sources) == 1:
        return f"trim({_q(sources[0])})"
    parts = ", ".join(f"nullif(trim({_q(s)}), '')" for s in sources)
    return f"nullif(concat_ws(' ', {parts}), '')"


def write_sites(con, mapping: dict[str, list[str]], landing: Path) -> None:
    """landing/<site>/<BATCH>/patients.csv per site: every Synthea patients column, in the registry's
    order, then the optional columns mapped (EMAIL); Id is the file's record id, mapped columns filled,
    the others blank. Also ts_all.csv (both sites with the true id) for --compare."""
    missing = sorted({s for sources in mapping.values() for s in sources} - _columns(con, "ts_in"))
    if missing:
        raise ValueError(f"--map: the file has no column {', '.join(missing)}")
    select = ", ".join(
        "ts_id AS Id" if c == "Id" else f"{_column_sql(mapping[c]) if c in mapping else 'NULL'} AS {c}"
        for c in [*patient_columns(), *(c for c in OPTIONAL_COLUMNS if c in mapping)]
    )
    for site_no, site in enumerate(SITES):
        folder = landing / site / BATCH
        folder.mkdir(parents=True)
        con.execute(
            f"COPY (SELECT {select} FROM ts_in WHERE ts_site = {site_no} ORDER BY ts_id) "
            f"TO '{folder / 'patients.csv'}' (HEADER, DELIMITER ',')"
        )
    con.execute(
        f"COPY (SELECT {select}, ts_true FROM ts_in ORDER BY ts_id) TO '{landing.parent / 'ts_all.csv'}' "
        "(HEADER, DELIMITER ',')"
    )


def _columns(con, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}


def site_registry(data_dir: Path) -> SourceRegistry:
    """The bundled ehr_site_a and a second Synthea site declared in the data directory's sources.yaml
    (`like: ehr_site_a`), as a user adds a site."""
    user = data_dir / "sources.yaml"
    user.write_text(
        yaml.safe_dump({"sources": [{"name": SITES[1], "like": SITES[0], "owner": "two-site bench"}]})
    )
    registry = load_registry(user_path=user)
    return SourceRegistry(tuple(registry.get(name) for name in SITES))


def run_pipeline(
    data_dir: Path, registry: SourceRegistry, result: Result, memory: str
) -> duckdb.DuckDBPyConnection:
    """Raw ingest of both sites' batch, staging, linkage; returns the linkage connection (its TEMP
    tables: lk_tokens, lk_scored, lk_pairs, lk_crosswalk)."""
    lake_dir, landing = data_dir / "lake", data_dir / "landing"
    start = time.perf_counter()
    for source in registry:
        report = ingest_batch(lake_dir, landing, source, BATCH)
        result.ingest_quarantined += sum(f.rows_quarantined for f in report.files)
    result.seconds["ingest"] = time.perf_counter() - start
    start = time.perf_counter()
    con = staging_connection(memory, 2)
    staging = build_staging(lake_dir, registry, con)
    con.close()
    result.staging_quarantined = {
        f"{table}: {reason}": n for (table, reason), n in staging.quarantine_reasons.items() if n
    }
    result.seconds["staging"] = time.perf_counter() - start
    start = time.perf_counter()
    con = staging_connection(memory, 2)
    register_staged_persons(con, lake_dir)
    link(con, lake_dir, KEY)
    result.seconds["linkage"] = time.perf_counter() - start
    result.linked_records = con.execute("SELECT count(*) FROM lk_tokens").fetchone()[0]
    return con


def score(con, split: duckdb.DuckDBPyConnection, result: Result) -> None:
    """Cross-site and all-pairs precision/recall/F1, blocking recall and the losses, on `con` (the
    linkage connection) with the truth of `split` (ts_in)."""
    truth = split.sql(
        f"SELECT CASE ts_site WHEN 0 THEN '{SITES[0]}' ELSE '{SITES[1]}' END || '|' || ts_id AS record_id, "
        "ts_true AS true_id, NULL::VARCHAR AS household_id, NULL::VARCHAR AS twin_of FROM ts_in"
    ).to_arrow_table()
    con.register("ts_truth", truth)
    con.execute("CREATE OR REPLACE TEMP TABLE lk_truth AS SELECT * FROM ts_truth")
    result.all_pairs = {**pair_scores(con), **blocking_recall(con)}
    result.cross = dict(zip(("true", "predicted", "tp"), con.execute(CROSS_SQL).fetchone(), strict=True))
    tp, pred, true = (result.cross[k] or 0 for k in ("tp", "predicted", "true"))
    precision, recall = (tp / pred if pred else 1.0), (tp / true if true else 1.0)
    result.cross["precision"], result.cross["recall"] = precision, recall
    result.cross["f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    losses = con.execute(LOSS_SQL).fetchall()
    result.losses = [(why, n) for why, n, _ in losses]
    compared = sum(blocked for _, _, blocked in losses)
    result.cross["blocking_recall"] = compared / true if true else 1.0


# Pairs across sites: per person (or true person, or both) n_site_a * n_site_c.
CROSS_SQL = f"""
WITH j AS (
    SELECT c.person_id, t.true_id, c.source_system = '{SITES[0]}' AS a
    FROM lk_crosswalk c JOIN lk_truth t ON t.record_id = c.source_system || '|' || c.source_person_id
)
SELECT (SELECT sum(n) FROM (SELECT count(*) FILTER (WHERE a) * count(*) FILTER (WHERE NOT a) AS n FROM j GROUP BY true_id)),
       (SELECT sum(n) FROM (SELECT count(*) FILTER (WHERE a) * count(*) FILTER (WHERE NOT a) AS n FROM j GROUP BY person_id)),
       (SELECT sum(n) FROM (SELECT count(*) FILTER (WHERE a) * count(*) FILTER (WHERE NOT a) AS n FROM j
                            GROUP BY person_id, true_id))
"""
# Every true cross-site pair, by what became of it: linked (same person, directly or through other
# records), or the first step that lost it. Third column: the pair reached comparison (blocking).
LOSS_SQL = f"""
WITH t AS (SELECT record_id, true_id, split_part(record_id, '|', 1) AS site FROM lk_truth),
true_pairs AS (
    SELECT least(a.record_id, b.record_id) AS l, greatest(a.record_id, b.record_id) AS r
    FROM t a JOIN t b ON a.true_id = b.true_id AND a.site = '{SITES[0]}' AND b.site <> '{SITES[0]}'
),
person AS (SELECT source_system || '|' || source_person_id AS record_id, person_id FROM lk_crosswalk),
fate AS (
    SELECT CASE
        WHEN pl.person_id = pr.person_id THEN 'linked'
        WHEN pl.record_id IS NULL OR pr.record_id IS NULL THEN 'quarantined (not staged)'
        WHEN s.record_id_l IS NULL THEN 'blocking (never compared)'
        WHEN p.record_id_l IS NULL OR p.decision = 'non_match' THEN 'scoring (p < {cluster.REVIEW})'
        WHEN p.hold_reason IS NOT NULL THEN 'held by clustering: ' || p.hold_reason
        WHEN p.decision = 'review' AND p.household_conflict THEN 'review: household guard'
        WHEN p.decision = 'review' AND p.match_probability >= {cluster.ACCEPT} THEN 'review: p >= {cluster.ACCEPT}, too little beyond names'
        WHEN p.decision = 'review' THEN 'review: {cluster.REVIEW} <= p < {cluster.ACCEPT}'
        ELSE 'linked apart (' || p.decision || ')' END AS why,
        s.record_id_l IS NOT NULL AS compared
    FROM true_pairs tp
    LEFT JOIN person pl ON pl.record_id = tp.l LEFT JOIN person pr ON pr.record_id = tp.r
    LEFT JOIN lk_scored s ON s.record_id_l = tp.l AND s.record_id_r = tp.r
    LEFT JOIN lk_pairs p ON p.record_id_l = tp.l AND p.record_id_r = tp.r
)
SELECT why, count(*), count(*) FILTER (WHERE compared) FROM fate GROUP BY why ORDER BY why <> 'linked', 2 DESC
"""


def compare_external(data_dir: Path, mapping: dict[str, list[str]]) -> dict:
    """bench/linkage_external.py's evaluate() on the records as landed (ts_all.csv: the Synthea columns,
    one source): the same fields without raw ingest and staging."""
    sys.path.insert(0, str(REPO / "bench"))
    from linkage_external import evaluate

    fields = {PII_FIELD[c]: c for c in mapping if c in PII_FIELD}
    return evaluate(data_dir / "ts_all.csv", fields, "ts_true", "Id")


def run(
    name: str, path: Path, mapping: dict[str, list[str]], truth, truth_pattern, id_column, args
) -> Result:
    result = Result()
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=args.workdir))
    os.environ["RWE_DATA_DIR"] = str(data_dir)  # anything reading settings sees the scratch directory
    try:
        split = duckdb.connect()
        result.records = read_and_split(split, path, truth, truth_pattern, id_column)
        write_sites(split, mapping, data_dir / "landing")
        con = run_pipeline(data_dir, site_registry(data_dir), result, args.memory)
        score(con, split, result)
        con.close()
        if args.compare:
            result.external = compare_external(data_dir, mapping)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return result


def report(name: str, r: Result) -> None:
    c, a = r.cross, r.all_pairs
    quarantined = ", ".join(f"{k} {n:,}" for k, n in sorted(r.staging_quarantined.items())) or "none"
    print(f"\n== {name}: {r.records:,} records in, split over {SITES[0]} / {SITES[1]}")
    print(f"   raw ingest quarantined {r.ingest_quarantined:,}; staging quarantined: {quarantined}")
    print(
        f"   reaching linkage {r.linked_records:,}; seconds "
        + ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items())
    )
    print(
        f"   cross-site pairs: true {c['true'] or 0:,}, predicted {c['predicted'] or 0:,}; precision {c['precision']:.4f} "
        f"recall {c['recall']:.4f} F1 {c['f1']:.4f}; blocking recall {c['blocking_recall']:.4f}"
    )
    print(
        f"   all pairs (within sites too): true {a['true_pairs']:,.0f}; precision {a['precision']:.4f} recall "
        f"{a['recall']:.4f} F1 {a['f1']:.4f}; blocking recall {a['blocking_recall']:.4f}"
    )
    if r.external:
        e = r.external
        print(
            f"   bench/linkage_external.py, same records and fields: precision {e['precision']:.4f} recall "
            f"{e['recall']:.4f} F1 {e['f1']:.4f}; blocking recall {e['blocking_recall']:.4f}"
        )
    print("   true cross-site pairs by fate:")
    for why, n in r.losses:
        print(f"     {why:<55} {n:>9,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=None, help="a benchmark file (CSV or Parquet)")
    parser.add_argument("--sets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--map", nargs="+", default=list(FEBRL_MAP), metavar="COLUMN[+COLUMN]=SYNTHEA_COLUMN")
    parser.add_argument("--truth", default="cluster", help="column holding the true person")
    parser.add_argument(
        "--truth-pattern", default=None, help="regex: the true person is its group 1 of the id"
    )
    parser.add_argument("--id", default="rec_id", help="record id column")
    parser.add_argument(
        "--compare", action="store_true", help="also run bench/linkage_external.py's evaluate()"
    )
    parser.add_argument("--memory", default="3GB", help="DuckDB memory_limit of staging and linkage")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch parent (default: the system's temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each set's data directory")
    args = parser.parse_args(argv)
    logging.getLogger("splink").setLevel(logging.ERROR)  # EM progress and "level not observed" notes
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    jobs = (
        [(args.file.stem, args.file, args.map, args.truth, args.id)]
        if args.file
        else [(name, *DATASETS[name]) for name in args.sets]
    )
    for name, path, mapping, truth, id_column in jobs:
        if not Path(path).exists():
            parser.error(f"{path} does not exist (this script reads local files, it never downloads)")
        pattern = args.truth_pattern if args.file else None
        report(name, run(name, Path(path), parse_mapping(mapping), truth, pattern, id_column, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
