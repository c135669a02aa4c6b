"""`rwe erase` (issue 24, item 2): a person present in several sources is erased from every file under
the data directory but the landing zone, Delta history included; their record landed again does not
come back; every other person keeps their person_id."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.governance import erase as erase_module
from rwe_assets.lib.governance import history, tombstone
from rwe_assets.settings import Settings

KEY = "erase-test-key-" + "x" * 32
SOURCES_WANTED = {"ehr_site_a", "ehr_site_b", "payer", "lab"}


class World:
    """A generated population landed, ingested and built in its own data directory."""

    def __init__(self, root: Path):
        from rwe_assets.synthetic import generate

        self.data, self.gen = root / "data", root / "gen"
        generate(self.gen, persons=40, seed=3)
        shutil.copytree(self.gen / "landing", self.data / "landing")
        self.truth = self.gen / "truth"  # the generator's truth stays outside the data directory

    @property
    def settings(self) -> Settings:
        return Settings.from_env()

    def ingest(self) -> None:
        from rwe_assets.definitions import defs
        from rwe_assets.defs.jobs import run_landed_batches
        from rwe_assets.lib.sources import load_registry

        with dg.DagsterInstance.get() as instance:
            outcomes = run_landed_batches(defs, instance, self.data / "landing", load_registry())
            assert all(result.success for _, result in outcomes)
            build = defs.resolve_job_def("build").execute_in_process(instance=instance, raise_on_error=False)
            assert any(e.step_key == erase_module.PUBLISH_STEP for e in build.get_step_success_events())

    def crosswalk(self) -> dict[tuple[str, str], int]:
        table = lake.read_table(self.data / "lake" / "linkage" / "person_crosswalk").to_pylist()
        return {(r["source_system"], r["source_person_id"]): r["person_id"] for r in table}


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _chosen(truth: Path) -> tuple[dict, list[dict], set[str]]:
    """A person in three sources or more (both EHRs among them) whose SSN and family name no other
    person holds, lab samples preferred; with their identifiers nobody else holds (a household
    shares its street line and phone, which stay in the lake for the others)."""
    persons = _rows(truth / "persons.csv")
    records = _rows(truth / "person_records.csv")
    samples = _rows(truth / "lab_samples.csv")

    def own(person, columns):
        others = {v for p in persons if p is not person for v in p.values()}
        return {person[c] for c in columns if person[c] and person[c] not in others}

    def candidates():
        for person in persons:
            mine = [r for r in records if r["TRUE_PERSON_ID"] == person["TRUE_PERSON_ID"]]
            sources = {r["SOURCE"] for r in mine}
            unique = own(person, ("SSN", "LAST_NAME")) == {person["SSN"], person["LAST_NAME"]}
            if len(sources) >= 3 and {"ehr_site_a", "ehr_site_b"} <= sources and unique:
                yield "lab" not in sources, int(person["TRUE_PERSON_ID"]), person, mine

    *_, person, mine = min(candidates(), key=lambda c: c[:2])
    needles = own(person, ("SSN", "LAST_NAME", "BIRTH_SURNAME", "ADDRESS", "PHONE"))
    needles |= {s["SAMPLE_ID"] for s in samples if s["TRUE_PERSON_ID"] == person["TRUE_PERSON_ID"]}
    return person, mine, needles


def _lake_identifiers(data: Path, records: list[dict]) -> set[str]:
    """What the lake itself made of the person: record ids, staging record keys, linkage tokens."""
    record_ids = {f"{r['SOURCE']}|{r['SOURCE_PERSON_ID']}" for r in records}
    spids = {r["SOURCE_PERSON_ID"] for r in records}
    found = set(record_ids)
    con = duckdb.connect()
    for name in ("visit", "event"):
        lake.register_view(con, "t", data / "lake" / "staging" / name)
        found |= {
            k
            for (k,) in con.execute(
                "SELECT record_key FROM t WHERE source_person_id IN ?", [list(spids)]
            ).fetchall()
        }
    lake.register_view(con, "t", data / "lake" / "linkage" / "tokens")
    for column in ("t_ssn", "t_family", "k_name_dob", "k_ssn_dob"):
        found |= {
            str(v)
            for (v,) in con.execute(
                f"SELECT {column} FROM t WHERE record_id IN ?", [list(record_ids)]
            ).fetchall()
            if v is not None
        }
    return {v for v in found if v and len(v) >= 8}


def scan(data: Path, needles: set[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in any file under `data` except landing/: parquet files
    read (decompressed) cell by cell, DuckDB files queried column by column, every file's bytes
    searched (gzip members decompressed)."""
    found = []
    encoded = {n: n.encode() for n in needles}
    # one pass for all the needles (a text no needle matches has none), then needle by needle in the
    # texts it matched: after an erasure most files hold none, and each needle's own pass costs as much.
    # The pass is polars' Aho-Corasick over the bytes read as Latin-1 (one character per byte, so a
    # needle's bytes match where its Latin-1 text does): its time does not grow with the needles, where
    # a regular expression of them all took 12x as long at 300 needles.
    latin = [b.decode("latin-1") for b in encoded.values()]

    def anyone(text: bytes) -> bool:
        return pl.Series([text.decode("latin-1")]).str.contains_any(latin).item()

    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        relative = path.relative_to(data).as_posix()
        if relative.startswith("landing/"):
            continue
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        texts = [raw]
        if path.suffix == ".parquet":
            texts.append(_parquet_text(raw))
        if path.suffix == ".duckdb":
            texts.append(_duckdb_text(path))
        texts = [t for t in texts if anyone(t)]
        found += [(relative, n) for n, b in encoded.items() if any(b in t for t in texts)]
    return found


def _parquet_text(raw: bytes) -> bytes:
    table = pq.read_table(io.BytesIO(raw))
    return "\x00".join(str(v) for column in table.columns for v in column.to_pylist()).encode()


def _duckdb_text(path: Path) -> bytes:
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE NOT internal"
        ).fetchall()
        parts = []
        for schema, table, column in columns:
            values = con.execute(
                f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}"'
            ).fetchall()
            parts += [v for (v,) in values if v is not None]
    return "\x00".join(parts).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("erase")
    patch = pytest.MonkeyPatch()
    patch.setenv("RWE_DATA_DIR", str(root / "data"))
    patch.setenv("RWE_LINKAGE_KEY", KEY)
    patch.setenv("DAGSTER_HOME", str(root / "data" / "dagster_home"))
    world = World(root)
    from rwe_assets.cli.data_dir import prepare_dagster_home as _prepare_dagster_home

    _prepare_dagster_home(world.settings)
    world.ingest()
    yield world
    patch.undo()


@pytest.mark.slow
def test_erasure_leaves_no_trace_and_refuses_the_person_again(world):
    person, records, needles = _chosen(world.truth)
    needles |= {r["SOURCE_PERSON_ID"] for r in records} | _lake_identifiers(world.data, records)
    # the scan sees them before: it can tell
    assert {n for _, n in scan(world.data, needles)} == needles
    before = world.crosswalk()
    first = next(r for r in records if r["SOURCE"] == "ehr_site_a")

    erasure = erase_module.erase(
        world.settings, source="ehr_site_a", source_person_id=first["SOURCE_PERSON_ID"]
    )

    assert erasure.build_ok, erasure.build_errors
    assert erasure.records == len(records)
    assert scan(world.data, needles) == []
    after = world.crosswalk()
    erased = {(r["SOURCE"], r["SOURCE_PERSON_ID"]) for r in records}
    assert after == {k: v for k, v in before.items() if k not in erased}
    # the sender's landing copies are listed for the operator, and the manifest says so
    assert "ehr_site_a/batch_0001/patients.csv" in erasure.landing_files
    manifest = lake.read_table(world.data / "lake" / "raw" / "_manifest").to_pylist()
    marked = {r["relative_path"] for r in manifest if r["landing_action"]}
    assert set(erasure.landing_files) == marked
    assert all(r["rows_erased"] > 0 for r in manifest if r["landing_action"])
    # the audit trail has the erasure, its counts and paths, none of their identifiers
    from rwe_assets.lib.governance import audit

    row = [r for r in audit.read_trail(world.settings).to_pylist() if r["action"] == "erasure"][-1]
    assert row["outcome"] == "ok" and erasure.erasure_id in row["what"]
    assert not [n for n in needles if n in row["what"]]

    _land_again(world, person, first)
    world.ingest()
    assert world.crosswalk() == after
    assert scan(world.data / "lake" / "linkage", needles) == []
    assert scan(world.data / "warehouse", needles) == []
    quarantine = lake.read_table(world.data / "lake" / "staging" / "_quarantine").to_pylist()
    refused = [r for r in quarantine if r["reason_code"] == tombstone.REASON]
    # both records, each a person_source and a person_pii row; the rows name no identifier of theirs
    assert sorted(r["staging_table"] for r in refused) == ["person_pii"] * 2 + ["person_source"] * 2
    assert all(r["record_key"] is None for r in refused)
    assert not [n for n in needles if n in str(refused)]
    assert scan(world.data / "lake" / "raw", needles)  # the rows sent again are in raw until:

    purge = erase_module.erase(world.settings, refused_only=True)
    assert purge.build_ok, purge.build_errors
    assert purge.records == 0 and purge.tombstones == 0
    assert sum(purge.rows_removed.values()) >= 2 and "ehr_site_a/again/patients.csv" in purge.landing_files
    assert scan(world.data, needles) == []
    assert world.crosswalk() == after
    quarantine = lake.read_table(world.data / "lake" / "staging" / "_quarantine").to_pylist()
    assert not [r for r in quarantine if r["reason_code"] == tombstone.REASON]


def _land_again(world, person: dict, record: dict) -> None:
    """Their patient row in a new batch, once as sent and once under a new id (same identity)."""
    patients = world.data / "landing" / "ehr_site_a" / "batch_0001" / "patients.csv"
    with patients.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, row = reader.fieldnames, next(r for r in reader if r["Id"] == record["SOURCE_PERSON_ID"])
    folder = world.data / "landing" / "ehr_site_a" / "again"
    folder.mkdir()
    with (folder / "patients.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerow(row)
        writer.writerow({**row, "Id": str(uuid.uuid4())})


@pytest.mark.slow
def test_unknown_person_changes_nothing(world):
    with pytest.raises(erase_module.ErasureError):
        erase_module.erase(world.settings, source="ehr_site_a", source_person_id="no-such-person")


def _candidates(con) -> None:
    """The staging candidate tables refuse_erased reads, as build_staging creates them (trimmed)."""
    trailer = "_reason VARCHAR, _reason_field VARCHAR, record_key VARCHAR"
    con.execute(
        "CREATE TABLE cand_person_pii (source_system VARCHAR, source_person_id VARCHAR, given_name VARCHAR, "
        f"family_name VARCHAR, birth_date DATE, ssn VARCHAR, {trailer})"
    )
    con.execute(
        f"CREATE TABLE cand_person_source (source_system VARCHAR, source_person_id VARCHAR, {trailer})"
    )
    con.execute(f"CREATE TABLE cand_event (source_system VARCHAR, source_person_id VARCHAR, {trailer})")
    con.execute(
        "INSERT INTO cand_person_pii VALUES ('a', 'p1', 'Ann Mary', 'Lee', '1970-02-03', '234-56-7891', NULL, NULL, 'p1'),"
        " ('b', 'q9', 'ann', 'LEE', '1970-02-03', NULL, NULL, NULL, 'q9'),"
        " ('a', 'p2', 'Bob', 'Lee', '1970-02-03', '987-65-4321', NULL, NULL, 'p2')"
    )
    con.execute(
        "INSERT INTO cand_person_source VALUES ('a', 'p1', NULL, NULL, 'p1'), ('c', 'x7', NULL, NULL, 'x7')"
    )
    con.execute(
        "INSERT INTO cand_event VALUES ('a', 'p1', NULL, NULL, 'e1'), ('c', 'x7', NULL, NULL, 'e2'), ('a', 'p2', NULL, NULL, 'e3')"
    )


def test_tombstones_are_keyed_tokens_and_refuse_every_record_of_the_identity(tmp_path):
    import hashlib
    import hmac

    lake_dir = tmp_path / "lake"
    con = duckdb.connect()
    _candidates(con)
    assert tombstone.refuse_erased(con, lake_dir, KEY) == 0  # no tombstone yet: nothing refused
    tombstone.register(con, KEY)
    con.execute(
        "CREATE VIEW erased AS SELECT * FROM cand_person_pii WHERE source_person_id = 'p1' "
        "UNION ALL BY NAME SELECT 'c' AS source_system, 'x7' AS source_person_id"
    )
    tokens = con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table()
    expected = hmac.new(KEY.encode(), b"tombstone|ssn_dob|234567891|1970-02-03", hashlib.sha256).hexdigest()
    assert expected in tokens.column("token").to_pylist()
    # two records, the name and birth date, the SSN and birth date
    assert tombstone.add(lake_dir, tokens, "e1") == tokens.num_rows == 4
    assert tombstone.add(lake_dir, tokens, "e2") == 0
    stored = lake.read_table(tombstone.tombstone_path(lake_dir)).to_pylist()
    assert not any(v in str(stored) for v in ("p1", "x7", "Lee", "234-56-7891", "1970"))

    # the same identity under another source and id (nickname-free, case apart) is refused too
    assert tombstone.refuse_erased(con, lake_dir, KEY) == 3
    refused = con.execute(
        "SELECT source_person_id, record_key FROM cand_event WHERE _reason = ? ORDER BY ALL",
        [tombstone.REASON],
    ).fetchall()
    assert refused == [("p1", None), ("x7", None)]
    kept = con.execute("SELECT source_person_id FROM cand_person_pii WHERE _reason IS NULL").fetchall()
    assert kept == [("p2",)]


def test_a_fresh_rewrite_drops_the_history_a_delete_keeps(tmp_path):
    from deltalake import DeltaTable, write_deltalake

    path = tmp_path / "data" / "lake" / "t"
    write_deltalake(str(path), pa.table({"id": ["keep-000001", "gone-000002"], "n": [1, 2]}))
    DeltaTable(str(path)).delete("id = 'gone-000002'")
    assert lake.read_table(path).column("id").to_pylist() == ["keep-000001"]
    # deleted, yet the superseded file and the log's min/max statistics still hold it
    assert {f for f, _ in scan(tmp_path / "data", {"gone-000002"})} >= {
        "lake/t/_delta_log/00000000000000000000.json"
    }
    history.rewrite(None, path, None)
    assert scan(tmp_path / "data", {"gone-000002"}) == []
    assert lake.read_table(path).to_pylist() == [{"id": "keep-000001", "n": 1}]
    assert DeltaTable(str(path)).version() == 0
