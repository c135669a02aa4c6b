"""The audit trail: rows, what record() refuses, and a chain that breaks whatever is tampered with."""

from __future__ import annotations

import getpass
import json
import multiprocessing
import os
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from rwe_assets.lib.governance import audit
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.settings import Settings
from rwe_assets_tests.conftest import land


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(environ={}, data_dir=tmp_path / "data")


def trail_of(settings, rows: int = 4) -> DeltaTable:
    for number in range(rows):
        audit.record(settings, "build", {"path": f"warehouse/b{number}.duckdb", "rows": number})
    return DeltaTable(str(audit.trail_path(settings.lake_dir)))


def test_rows_are_numbered_chained_and_say_who(settings):
    trail_of(settings, 3)
    rows = audit.read_trail(settings).to_pylist()
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert json.loads(rows[2]["what"]) == {"path": "warehouse/b2.duckdb", "rows": 2}
    assert {r["who"] for r in rows} == {getpass.getuser()}
    assert {r["action"] for r in rows} == {"build"} and rows[0]["at"].tzinfo is not None
    assert audit.verify_chain(settings) == []
    assert audit.head(settings.lake_dir) == (3, rows[2]["hash"])


@pytest.mark.parametrize(
    "action, what, outcome",
    [
        ("delete_everything", {}, "ok"),  # not an action of ACTIONS
        ("export", {"person": {"name": "x"}}, "ok"),  # nested: not a flat value
        ("export", {"rows": [1, {"a": 2}]}, "ok"),
        ("export", {"text": "x" * (audit.MAX_TEXT + 1)}, "ok"),  # a data dump, not a path
        ("export", {"rows": 1}, "Failed: see John Smith"),  # outcome is a short word
        ("export", ["rows"], "ok"),
    ],
)
def test_record_refuses_what_is_not_paths_counts_and_ids(settings, action, what, outcome):
    with pytest.raises(audit.AuditError):
        audit.record(settings, action, what, outcome)
    assert audit.read_trail(settings).num_rows == 0


def test_an_altered_row_breaks_the_chain(settings):
    trail_of(settings).update(updates={"what": '\'{"path":"elsewhere"}\''}, predicate="seq = 2")
    problems = audit.verify_chain(settings)
    assert "seq 2: hash does not match the row (altered)" in problems
    assert any("UPDATE" in p for p in problems)  # the Delta history shows it too


def test_a_row_altered_in_its_parquet_file_behind_deltas_back_breaks_the_chain(settings):
    table = trail_of(settings)
    data_file = next(
        p for p in table.file_uris() if pq.read_table(p.removeprefix("file://")).column("seq")[0].as_py() == 3
    ).removeprefix("file://")
    rows = pq.read_table(data_file).to_pylist()
    rows[0]["outcome"] = "no"  # as long as "ok": the file keeps the size the Delta log records
    pq.write_table(pq.read_table(data_file).from_pylist(rows, schema=audit.SCHEMA), data_file)
    problems = audit.verify_chain(settings)
    assert problems == ["seq 3: hash does not match the row (altered)"] or "unreadable" in problems[0]


def test_a_deleted_row_breaks_the_chain(settings):
    trail_of(settings).delete("seq = 2")
    problems = audit.verify_chain(settings)
    assert any("seq 3 where 2 was expected" in p for p in problems)
    assert any("DELETE" in p for p in problems)


def test_reordered_rows_break_the_chain(settings):
    trail_of(settings).update(
        updates={"seq": "CASE WHEN seq = 2 THEN 3 ELSE 2 END"}, predicate="seq IN (2, 3)"
    )
    problems = audit.verify_chain(settings)
    assert "seq 2: prev_hash does not match the hash of seq 1" in problems


def test_a_truncated_tail_is_caught_by_the_anchor(settings):
    trail_of(settings, 4)
    anchor = audit.head(settings.lake_dir)
    log = audit.trail_path(settings.lake_dir) / "_delta_log"
    last_commit = sorted(log.glob("*.json"))[-1]
    last_commit.unlink()  # the last append vanishes, history and all: the chain of 3 rows holds
    assert audit.verify_chain(settings) == []
    assert audit.verify_chain(settings, anchor) == [
        "anchor seq 4 is missing: the trail ends at seq 3 (truncated)"
    ]


def test_a_fragmented_trail_is_compacted_and_its_chain_holds(settings, monkeypatch):
    monkeypatch.setattr(audit, "COMPACT_AT_FILES", 3)
    table = trail_of(settings, 7)
    table.update_incremental()
    assert len(table.file_uris()) < 3
    assert "OPTIMIZE" in {entry["operation"] for entry in table.history()}
    assert audit.read_trail(settings).column("seq").to_pylist() == list(range(1, 8))
    assert audit.verify_chain(settings) == [] and audit.head(settings.lake_dir)[0] == 7


def test_the_trail_is_owner_only(settings):
    trail_of(settings, 2)
    for path in [settings.lake_dir, *settings.lake_dir.rglob("*")]:
        assert os.stat(path).st_mode & 0o077 == 0, path


def _append_many(data_dir: str, count: int) -> None:
    settings = Settings.from_env(environ={}, data_dir=Path(data_dir))
    for number in range(count):
        audit.record(settings, "review_decision", {"pair": number, "pid": os.getpid()})


def test_concurrent_writers_leave_no_gap_and_no_fork(settings):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(settings.data_dir), 8)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    rows = audit.read_trail(settings)
    assert rows.column("seq").to_pylist() == list(range(1, 25))
    assert audit.verify_chain(settings) == []


def test_a_row_written_in_a_dagster_run_names_the_run(settings):
    @dg.asset
    def audited(context) -> None:
        audit.record(settings, "export", {"path": "warehouse/x.duckdb"})

    result = dg.materialize([audited], tags={"dagster/sensor_name": "landing"})
    row = audit.read_trail(settings).to_pylist()[0]
    assert row["run_id"] == result.run_id
    assert row["who"] == f"{getpass.getuser()} (sensor landing)"


def test_every_ingested_file_gets_one_row_with_counts_and_no_value(registry, tmp_path):
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "data")
    patients = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,1999-12-31,Cy\n"
    land(settings.landing_dir, "clinic", "b1", {"patients.csv": patients, "conditions.csv": "PATIENT\np1\n"})
    ingest_batch(settings.lake_dir, settings.landing_dir, registry.get("clinic"), "b1", run_id="r1")
    ingest_batch(settings.lake_dir, settings.landing_dir, registry.get("clinic"), "b1", run_id="r2")  # no-op
    rows = audit.read_trail(settings).to_pylist()
    assert [(r["action"], r["outcome"], r["run_id"]) for r in rows] == [
        ("ingest", "failed", "r1"),  # conditions.csv lacks its CODE column
        ("ingest", "ingested", "r1"),
    ]
    what = json.loads(rows[1]["what"])
    assert (what["file"], what["rows_stored"], what["rows_quarantined"], what["batch_id"]) == (
        "clinic/b1/patients.csv",
        2,
        0,
        "b1",
    )
    assert len(what["file_sha256"]) == 64
    text = json.dumps(rows, default=str)
    assert "Ann" not in text and "2001-02-03" not in text
    assert audit.verify_chain(settings) == []


def test_publishing_records_the_build_and_the_swap_or_the_refusal(settings):
    from rwe_assets.lib.publish import PublishBlocked, publish
    from rwe_assets_tests.lib.test_publish import make_build

    warehouse = settings.warehouse_dir
    make_build(warehouse, 3)
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute("CREATE TABLE cdm.location AS SELECT range AS location_id FROM range(2)")
    target = publish(warehouse, settings=settings)
    assert os.stat(target).st_mode & 0o777 == 0o640
    make_build(warehouse, 4, failed_checks=["isPrimaryKey"])
    with pytest.raises(PublishBlocked):
        publish(warehouse, settings=settings)
    rows = audit.read_trail(settings).to_pylist()
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("build", "ok"),
        ("publish", "ok"),
        ("publish", "refused"),
    ]
    published = json.loads(rows[1]["what"])
    assert (published["published"], published["persons"], published["cdm_tables"]) == (str(target), 3, 2)
    assert published["cdm_rows"] == 3 + 2 and published["size_bytes"] == target.stat().st_size
    assert json.loads(rows[2]["what"]) == {"build": str(warehouse / "build.duckdb"), "published": str(target)}
