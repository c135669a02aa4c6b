"""`rwe doctor`: check the ingest manifest against the raw Delta tables and repair what a crash or a
second writer left behind.

What it finds, and what it does (under the lake lock, each repair one Delta transaction):

| finding | cause | repair |
|---|---|---|
| `MANIFEST_ROW_TWICE` | the same file (batch, path, sha256) listed twice | keep the first row |
| `FILE_INGESTED_TWICE` | the same bytes listed `ingested` under two paths | later rows become `duplicate` |
| `ROWS_STORED_TWICE` | a file's rows written by two ingests (two `_ingested_at`) | keep the rows of the ingest the manifest lists |
| `ROWS_MISSING` | the manifest lists a file whose rows no table holds (the commit is gone) | drop its manifest row: the next ingest reads the file again |
| `ORPHAN_ROWS` | rows of a file the manifest does not list (a crash between rows and manifest) | delete them: the next ingest of the file writes them again |
| `DEAD_RUN` | a run of this host whose process is gone | mark it failed, free its pool slots |

Read-only with `repair=False`. Messages name sources, paths, sha256 prefixes and counts, never values.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from rwe_assets.lib import lake
from rwe_assets.lib.lake_lock import lake_lock, read_owner
from rwe_assets.lib.raw_ingest import MANIFEST, MANIFEST_SCHEMA, QUARANTINE, Status, read_manifest


@dataclass(frozen=True)
class Finding:
    code: str
    where: str  # a table, or a file of the landing zone, with its sha256 prefix
    detail: str

    def describe(self) -> str:
        return f"{self.code}: {self.where}: {self.detail}"


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    repaired: bool = False

    @property
    def healthy(self) -> bool:
        return not self.findings


def raw_tables(lake_dir: Path) -> list[Path]:
    """Every Delta table of the raw layer that carries file provenance (entities and the quarantine)."""
    raw = lake.require_local(lake_dir, "doctor") / "raw"
    paths = [p for p in sorted(raw.glob("*/*")) if p.is_dir() and lake.exists(p)]
    return paths + ([raw / QUARANTINE] if lake.exists(raw / QUARANTINE) else [])


def examine(lake_dir: Path, repair: bool = False) -> DoctorReport:
    """Check (and with `repair`, fix) the manifest and the raw tables. The caller holds the lake lock."""
    report = DoctorReport()
    manifest = read_manifest(lake_dir)
    kept, manifest_findings = _repair_manifest_rows(manifest.to_pylist())
    report.findings += manifest_findings
    stamps = _ingest_stamps(lake_dir)  # table -> sha256 -> {ingested_at: rows}
    listed = {r["file_sha256"]: r for r in kept if r["status"] == Status.INGESTED}
    for path, by_sha in stamps.items():
        for sha, groups in by_sha.items():
            finding = _check_file_rows(lake_dir, path, sha, groups, listed.get(sha), repair)
            if finding is not None:
                report.findings.append(finding)
    stored = {sha for by_sha in stamps.values() for sha in by_sha}
    for sha, row in listed.items():
        if row["records_read"] and sha not in stored:
            report.findings.append(
                Finding("ROWS_MISSING", _file(row), f"{row['records_read']} record(s) listed, none stored")
            )
            kept.remove(row)
    manifest_codes = {"MANIFEST_ROW_TWICE", "FILE_INGESTED_TWICE", "ROWS_MISSING"}
    if repair and any(f.code in manifest_codes for f in report.findings):
        _rewrite_manifest(lake_dir, kept)
    report.repaired = repair
    return report


def _file(row: dict) -> str:
    return f"{row['relative_path']} ({(row['file_sha256'] or 'no sha256')[:12]})"


def _repair_manifest_rows(rows: list[dict]) -> tuple[list[dict], list[Finding]]:
    """Drop rows listed twice; later `ingested` rows of bytes already ingested become `duplicate`."""
    rows = sorted(rows, key=lambda r: (r["ingested_at"], r["relative_path"]))
    findings, seen, ingested, kept = [], set(), set(), []
    for row in rows:
        key = (
            row["source"],
            row["batch_id"],
            row["relative_path"],
            row["file_sha256"],
            row["status"],
            row["error"],
        )
        if key in seen:
            findings.append(
                Finding("MANIFEST_ROW_TWICE", _file(row), "the same file and outcome listed again")
            )
            continue
        seen.add(key)
        if row["status"] == Status.INGESTED and (row["source"], row["file_sha256"]) in ingested:
            findings.append(
                Finding("FILE_INGESTED_TWICE", _file(row), "bytes already ingested: now `duplicate`")
            )
            row = {**row, "status": Status.DUPLICATE, "records_read": 0, "rows_stored": 0}
            row.update(rows_quarantined=0, entities="")
        elif row["status"] == Status.INGESTED:
            ingested.add((row["source"], row["file_sha256"]))
        kept.append(row)
    return kept, findings


def _ingest_stamps(lake_dir: Path) -> dict[Path, dict[str, Counter]]:
    """Per raw table and file sha256: rows per `_ingested_at` (one stamp per ingest of a file)."""
    stamps: dict[Path, dict[str, Counter]] = {}
    for path in raw_tables(lake_dir):
        table = lake.read_table(path, columns=["_file_sha256", "_ingested_at"])
        grouped = table.group_by(["_file_sha256", "_ingested_at"]).aggregate([([], "count_all")])
        by_sha: dict[str, Counter] = defaultdict(Counter)
        for item in grouped.to_pylist():
            by_sha[item["_file_sha256"]][item["_ingested_at"]] = item["count_all"]
        stamps[path] = dict(by_sha)
    return stamps


def _check_file_rows(lake_dir, path: Path, sha: str, groups: Counter, listed: dict | None, repair: bool):
    where = f"{path.relative_to(lake_dir).as_posix()} file {sha[:12]}"
    if listed is None:
        if repair:
            lake.replace_file_rows(path, _empty_like(path), sha)
        return Finding(
            "ORPHAN_ROWS", where, f"{sum(groups.values())} row(s) of a file the manifest does not list"
        )
    if len(groups) == 1:
        return None
    keep = listed["ingested_at"] if listed["ingested_at"] in groups else min(groups)
    if repair:
        rows = lake.read_table(path, filter_expr=ds.field("_file_sha256") == sha)
        kept = rows.filter(
            pc.equal(rows.column("_ingested_at"), pa.scalar(keep, rows.schema.field("_ingested_at").type))
        )
        lake.replace_file_rows(path, kept, sha)
    extra = sum(n for stamp, n in groups.items() if stamp != keep)
    return Finding(
        "ROWS_STORED_TWICE", where, f"{len(groups)} ingests stored it; {extra} extra row(s) removed"
    )


def _empty_like(path: Path) -> pa.Table:
    return lake.open_table(path).schema().to_arrow().empty_table()


def _rewrite_manifest(lake_dir: Path, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    lake.write(lake.table_path(lake_dir, "raw", MANIFEST), table, mode="overwrite")


def doctor(settings, *, repair: bool = True, instance=None) -> DoctorReport:
    """Check and repair the lake of `settings` under its lock (waiting at most a minute for another
    writer); with a Dagster instance, also fail runs of this host whose process is gone."""
    with lake_lock(settings.data_dir, "rwe doctor", timeout=60):
        report = examine(settings.lake_dir, repair=repair)
    if instance is not None:
        from rwe_assets.defs.automation.recovery import reap_dead_runs  # Dagster wiring, only here

        for run in reap_dead_runs(instance) if repair else []:
            report.findings.append(
                Finding("DEAD_RUN", f"run {run.run_id}", f"{run.job_name}, pid {run.pid} gone: failed")
            )
    return report


def main(settings, repair: bool = True) -> int:
    """`rwe doctor`: print what was found and repaired; 0 when the lake is consistent now."""
    import dagster as dg

    from rwe_assets.lib.landing import invalid_batches
    from rwe_assets.lib.sources import load_registry

    owner = read_owner(settings.data_dir)
    if owner is not None:
        print(f"lake lock last held by {owner.describe()}")
    # Without DAGSTER_HOME there are no runs to look at: the lake alone.
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    try:
        report = doctor(settings, repair=repair, instance=instance)
    finally:
        if instance is not None:
            instance.dispose()
    for finding in report.findings:
        print(("repaired " if repair else "found ") + finding.describe())
    for entry in invalid_batches(settings.landing_dir, load_registry()):
        print(f"not read: {entry.describe()}")
    if report.healthy:
        print("the lake is consistent: every manifest row has its rows, and every row its manifest row")
        return 0
    if not repair:
        return 1
    after = examine(settings.lake_dir, repair=False)
    for finding in after.findings:
        print(f"NOT REPAIRED {finding.describe()}")
    return 0 if after.healthy else 1
