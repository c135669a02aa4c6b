"""Update batches (generate_update): new persons are new, changes name records of the base, every
kind of change is there, the files read as each source's format, and the bytes follow the seed."""

from __future__ import annotations

import gzip
import hashlib
import json

import polars as pl
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.synthetic import generate
from rwe_assets.synthetic.cli import main
from rwe_assets.synthetic.update import generate_update
from rwe_assets.synthetic.update.base import landing_lines as _lines

KINDS = {
    "ehr_site_a": {"new_event", "correction", "retraction"},
    "ehr_site_b": {"new_event", "correction", "retraction"},
    "payer": {"new_event", "adjustment", "void"},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("update_base")
    generate(out, 1000, seed=3, chunk_size=400)
    return out


@pytest.fixture(scope="module")
def update(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("update")
    generate_update(base, out, fraction=0.02)
    return out


def records(folder) -> pl.DataFrame:
    return pl.read_csv(folder / "truth" / "person_records.csv", infer_schema=False)


def lines(folder, source: str, pattern: str) -> str:
    return "".join(p.read_text() for p in sorted((folder / "landing" / source).glob(f"*/{pattern}")))


def digests(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_new_persons_are_new(base, update):
    old, new = records(base), records(update)
    report = json.loads((update / "truth" / "report.json").read_text())
    assert report["new_persons"] == 20
    true_ids = pl.read_csv(update / "truth" / "persons.csv")["TRUE_PERSON_ID"]
    assert true_ids.min() == 1001 and len(true_ids) == 20
    assert set(new["BATCH"]) == {"update_0001"}
    assert not set(new["SOURCE_PERSON_ID"]) & set(old["SOURCE_PERSON_ID"])
    assert not set(new["TRUE_PERSON_ID"]) & set(old["TRUE_PERSON_ID"])


def test_a_second_update_of_another_fraction_takes_ids_of_its_own(base, update, tmp_path):
    second = generate_update(base, tmp_path / "second", fraction=0.01, number=2)
    first_ids = set(pl.read_csv(update / "truth" / "persons.csv")["TRUE_PERSON_ID"])
    second_ids = set(pl.read_csv(tmp_path / "second" / "truth" / "persons.csv")["TRUE_PERSON_ID"])
    assert len(second_ids) == second.new_persons == 10 and not first_ids & second_ids
    assert not set(records(tmp_path / "second")["SOURCE_PERSON_ID"]) & set(
        records(update)["SOURCE_PERSON_ID"]
    )


def test_every_kind_of_change_names_an_existing_record_of_a_living_person(base, update):
    changes = pl.read_csv(update / "truth" / "update_changes.csv", infer_schema=False)
    for source, kinds in KINDS.items():
        assert set(changes.filter(pl.col("SOURCE") == source)["CHANGE"]) == kinds, source
    old = records(base)
    persons = pl.read_csv(base / "truth" / "persons.csv", infer_schema=False)
    dead = set(persons.filter(pl.col("DEATH_DATE").fill_null("") != "")["TRUE_PERSON_ID"])
    assert set(changes["SOURCE_PERSON_ID"]) <= set(old["SOURCE_PERSON_ID"])
    assert not set(changes["TRUE_PERSON_ID"]) & dead
    base_text = {
        "ehr_site_a": lines(base, "ehr_site_a", "encounters.csv"),
        "ehr_site_b": lines(base, "ehr_site_b", "*.ndjson"),
        "payer": lines(base, "payer", "*Claims*.csv") + lines(base, "payer", "*Drug_Events*.csv"),
    }
    for row in changes.filter(
        pl.col("ENTITY").is_in(
            [
                "encounters",
                "encounter",
                "condition",
                "observation",
                "carrier_claims",
                "prescription_drug_events",
            ]
        )
    ).iter_rows(named=True):
        record = row["RECORD_ID"].split("/")[-1]
        in_base = record in base_text[row["SOURCE"]]
        assert in_base == (row["CHANGE"] != "new_event"), row


def test_changes_follow_each_sources_semantics(base, update):
    changes = pl.read_csv(update / "truth" / "update_changes.csv", infer_schema=False)
    conditions = [json.loads(x) for x in lines(update, "ehr_site_b", "Condition.000.ndjson").splitlines()]
    retracted = {
        f"Condition/{c['id']}"
        for c in conditions
        if c.get("verificationStatus", {}).get("coding", [{}])[0].get("code") == "entered-in-error"
    }
    expected = changes.filter((pl.col("SOURCE") == "ehr_site_b") & (pl.col("CHANGE") == "retraction"))
    assert retracted == set(expected["RECORD_ID"])
    observations = [json.loads(x) for x in lines(update, "ehr_site_b", "Observation.000.ndjson").splitlines()]
    versioned = {f"Observation/{o['id']}" for o in observations if o["meta"].get("versionId") == "2"}
    fixed = changes.filter((pl.col("SOURCE") == "ehr_site_b") & (pl.col("CHANGE") == "correction"))
    assert versioned == set(fixed["RECORD_ID"])
    voids = pl.read_csv(
        next((update / "landing" / "payer" / "update_0001").glob("*Adjustments.csv")), infer_schema=False
    )
    assert set(voids.filter(pl.col("CLM_ADJSMT_TYPE_CD") == "1")["CLM_ID"]) == set(
        changes.filter(pl.col("CHANGE") == "void")["RECORD_ID"]
    )
    # a Synthea snapshot re-sends a touched person's whole entity: the retracted row alone is missing
    site_a = changes.filter((pl.col("SOURCE") == "ehr_site_a") & (pl.col("ENTITY") == "conditions"))
    text = lines(update, "ehr_site_a", "conditions.csv")
    for row in site_a.iter_rows(named=True):
        patient, encounter, code, start = row["RECORD_ID"].split("|")
        assert f"{start},,{patient},{encounter},{code}," not in text
        assert patient in text


def test_raw_ingest_accepts_every_update_file(update, tmp_path):
    registry = {s.name: s for s in load_registry()}
    for source in ("ehr_site_a", "ehr_site_b", "payer", "lab"):
        report = ingest_batch(tmp_path / "lake", update / "landing", registry[source], "update_0001")
        assert not report.failed, source


def test_same_base_and_number_give_identical_bytes_another_number_differs(base, update, tmp_path):
    again, second = tmp_path / "again", tmp_path / "second"
    generate_update(base, again, fraction=0.02)
    assert digests(again) == digests(update)
    generate_update(base, second, fraction=0.02, number=2)
    assert not set(records(second)["SOURCE_PERSON_ID"]) & set(records(update)["SOURCE_PERSON_ID"])
    assert (
        pl.read_csv(second / "truth" / "persons.csv")["TRUE_PERSON_ID"].min() == 2001
    )  # the second block of 1,000 ids


def test_refusals(base, tmp_path):
    with pytest.raises(ConfigError, match="fraction"):
        generate_update(base, tmp_path / "a", fraction=0)
    with pytest.raises(ConfigError, match=r"report\.json"):
        generate_update(tmp_path, tmp_path / "b")
    assert main(["--update-of", str(base), "--seed", "4", "--out", str(tmp_path / "c")]) == 2
    assert main(["--update-of", str(base), "--persons", "1000", "--out", str(tmp_path / "d")]) == 0


def test_lines_drop_a_csv_header_only_and_read_gzip(tmp_path):
    header_only, ndjson, packed = tmp_path / "a.csv", tmp_path / "b.ndjson", tmp_path / "c.csv.gz"
    header_only.write_text("A,B\n")
    ndjson.write_text('{"id":"1"}\n{"id":"2"}\n')
    packed.write_bytes(gzip.compress(b"A,B\n1,2\n"))
    assert _lines([header_only]).to_list() == []
    assert _lines([ndjson], header=False).to_list() == ['{"id":"1"}', '{"id":"2"}']
    assert _lines([packed, header_only]).to_list() == ["1,2"]
