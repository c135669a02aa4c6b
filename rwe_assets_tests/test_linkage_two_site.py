"""bench/linkage_two_site.py on a hand-written FEBRL-shaped fixture (rwe_assets_tests/data/linkage_two_site):
two EHR sites written as Synthea patients.csv, landed, ingested, staged and linked through the
pipeline; and the staging/linkage rule the fixture needs (a 7-digit social security id is kept)."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage.tokens import build_tokens

BENCH = Path(__file__).resolve().parents[1] / "bench" / "linkage_two_site.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("linkage_two_site", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _run(bench, tmp_path, name="febrl_fixture", path=None, mapping=None):
    file, default_map, truth, id_column = bench.DATASETS["febrl_fixture"]
    args = argparse.Namespace(workdir=tmp_path, memory="1GB", compare=False, keep=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RWE_DATA_DIR", str(tmp_path))  # the bench points it at its scratch dir; restored
        result = bench.run(
            name, path or file, bench.parse_mapping(mapping or default_map), truth, None, id_column, args
        )
    (data_dir,) = tmp_path.glob(f"{name}_*")
    return result, data_dir


@pytest.fixture(scope="module")
def fixture_run(bench, tmp_path_factory):
    """The fixture through the pipeline once (a few seconds) for the tests below."""
    return _run(bench, tmp_path_factory.mktemp("two_site"))


def test_every_true_pair_of_the_fixture_is_linked_across_sites_and_no_one_else(fixture_run):
    result, _ = fixture_run
    assert (result.records, result.linked_records, result.ingest_quarantined) == (30, 30, 0)
    assert result.staging_quarantined == {}
    # 13 true pairs: typos in street, surname and postcode, swapped names, a nickname, a missing given
    # name, a missing and an impossible birth date, day/month swapped, a birth year typo with another
    # address (found by the 7-digit id alone), an id typo; and 4 namesakes / household members
    assert result.cross["true"] == 13 and result.cross["tp"] == 13
    assert (result.cross["precision"], result.cross["recall"]) == (1.0, 1.0)
    assert result.losses == [("linked", 13)]
    assert result.all_pairs["predicted_pairs"] == 13  # nothing merged within a site either


def test_sites_are_synthea_patients_files_with_one_record_of_each_true_pair(bench, fixture_run):
    _, data_dir = fixture_run
    columns = bench.patient_columns()
    rows = {}
    for site in bench.SITES:
        with open(data_dir / "landing" / site / bench.BATCH / "patients.csv", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == columns
            rows[site] = {r["Id"]: r for r in reader}
    a, c = (set(rows[s]) for s in bench.SITES)
    assert len(a) + len(c) == 30 and not a & c
    for n in range(1, 14):  # each person's two records sit on different sites
        assert (f"rec-{n}-org" in a) != (f"rec-{n}-dup-0" in a)
    record = {**rows[bench.SITES[0]], **rows[bench.SITES[1]]}["rec-2-org"]
    assert (record["ADDRESS"], record["CITY"], record["ZIP"], record["SSN"]) == (
        "7 ballard street rosewood estate",  # street number + address lines joined
        "toowoomba",
        "4350",
        "5530981",
    )
    assert record["BIRTHDATE"] == "19850722" and record["GENDER"] == "" and record["DRIVERS"] == ""


def test_a_quarantined_record_is_counted_as_what_lost_its_pair(bench, tmp_path):
    fixture = bench.DATASETS["febrl_fixture"][0]
    text = fixture.read_text().splitlines()
    text[0] += ",died"
    text[1:] = [line + (",19000101" if line.startswith("rec-1-org,") else ",") for line in text[1:]]
    path = tmp_path / "febrl_dead.csv"
    path.write_text("\n".join(text) + "\n")
    mapping = [*bench.DATASETS["febrl_fixture"][1], "died=DEATHDATE"]  # a death before the birth
    result, _ = _run(bench, tmp_path, "dead", path, mapping)
    # the person is quarantined, and its identifiers with it (no person to link them to)
    assert result.staging_quarantined == {
        "person_source: BIRTH_AFTER_DEATH": 1,
        "person_pii: ORPHAN_PERSON": 1,
    }
    assert dict(result.losses) == {"linked": 12, "quarantined (not staged)": 1}


# (record, SSN value, staged as a declared us-ssn national id too): pairs a/b, c/d, e/f below
SSN_RECORDS = [
    ("a", "4012735", True), ("b", "4012735", True),  # a 7-digit social security id, twice
    ("c", "4012735", True), ("d", "4012736", True),  # two different ones
    ("e", "999-12-3456", True), ("f", "999123456", True),  # a US SSN, written two ways
    ("g", "4012735", False), ("h", "4012735", False),  # a bare ssn column, as bench/linkage_external.py
]  # fmt: skip


@pytest.fixture(scope="module")
def ssn_tokens() -> dict[str, tuple]:
    """t_ssn and the identifier offer list of each record of SSN_RECORDS, tokenized once."""
    kind = pa.list_(pa.struct([("type", pa.string()), ("system", pa.string()), ("value", pa.string())]))
    declared = [
        [{"type": "national_id", "system": "us-ssn", "value": v}] if d else None for _, v, d in SSN_RECORDS
    ]
    table = {
        "source_system": ["site"] * len(SSN_RECORDS),
        "source_person_id": [r for r, _, _ in SSN_RECORDS],
        "_batch_id": ["b1"] * len(SSN_RECORDS),
        "ssn": [v for _, v, _ in SSN_RECORDS],
        "identifiers": pa.array(declared, kind),
    }
    con = duckdb.connect()
    con.register("person_pii", pa.table(table))
    build_tokens(con, "test-key-for-linkage-tests")
    rows = con.execute("SELECT source_person_id, t_ssn, t_id_offer FROM lk_tokens").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize("same", ["ab", "gh"])  # declared as a national id, or a bare ssn column
def test_a_seven_digit_social_security_id_is_compared_as_a_national_id(ssn_tokens, same):
    (ssn_l, offer_l), (ssn_r, offer_r) = ssn_tokens[same[0]], ssn_tokens[same[1]]
    assert ssn_l is None and ssn_r is None  # not a US SSN: no SSN comparison or rule
    assert offer_l and offer_l == offer_r  # but the same national number: the identifier agrees


def test_other_social_security_ids_differ_and_a_us_ssn_stays_the_ssns(ssn_tokens):
    assert ssn_tokens["c"][1] and ssn_tokens["d"][1] and not set(ssn_tokens["c"][1]) & set(ssn_tokens["d"][1])
    (ssn_e, offer_e), (ssn_f, offer_f) = ssn_tokens["e"], ssn_tokens["f"]
    assert ssn_e is not None and ssn_e == ssn_f and offer_e is None and offer_f is None
