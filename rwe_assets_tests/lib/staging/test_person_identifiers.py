"""Typed identifiers in staging.person_pii: the fields each source's registry entry declares
(sources.yaml `identifiers`), read by the profile's person SQL through the DuckDB variable
lib/sources.py sets, and the registry's validation of those entries."""

from __future__ import annotations

import copy

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sources import load_registry, parse_registry, set_identifier_variables
from rwe_assets.lib.staging.build import SQL_DIR, staging_connection
from rwe_assets_tests.conftest import TINY_REGISTRY


def _run(source_name: str, sql_path: str, raw_view: str, rows: list[dict], registry=None):
    """The identifiers the person SQL stages for `rows` (raw text columns) of the bundled `source_name`."""
    source = (registry or load_registry()).get(source_name)
    con = staging_connection(memory_limit="1GB", threads=1)
    columns = sorted({c for row in rows for c in row})
    values = ", ".join(
        "(" + ", ".join("NULL" if row.get(c) is None else "'" + row[c] + "'" for c in columns) + ")"
        for row in rows
    )
    provenance = (
        "'f.csv' AS _source_file, 1::BIGINT AS _line_number, 'b1' AS _batch_id, now() AS _ingested_at"
    )
    con.execute(
        f"CREATE VIEW {raw_view} AS SELECT *, {provenance} FROM (VALUES {values}) AS t({', '.join(columns)})"
    )
    set_identifier_variables(con, source)
    sql = (SQL_DIR / sql_path).read_text()
    return [
        r[0]
        for r in con.execute(
            f"SELECT identifiers FROM ({sql}) ORDER BY source_person_id", {"source": source_name}
        ).fetchall()
    ]


SYNTHEA = {"FIRST": "Ann", "LAST": "Lee", "BIRTHDATE": "1980-01-02", "GENDER": "F", "ADDRESS": "1 Main St",
           "CITY": "Boston", "STATE": "Massachusetts", "ZIP": "02110", "MAIDEN": None}  # fmt: skip


def test_synthea_csv_identifiers_are_typed_with_their_issuer_or_the_site():
    row = {**SYNTHEA, "Id": "p1", "SSN": "999-11-2222", "DRIVERS": "S99912345", "PASSPORT": ""}
    [ids] = _run("ehr_site_a", "synthea_csv/person_pii/patients.sql", "raw_patients", [row])
    assert ids == [
        {"type": "drivers_license", "system": None, "value": "S99912345"},  # Synthea states no issuer
        {"type": "mrn", "system": "site_a", "value": "p1"},  # the site's own patient id
        {"type": "national_id", "system": "us-ssn", "value": "999-11-2222"},
    ]  # an empty PASSPORT is no identifier


def test_a_site_declares_an_extra_identifier_column_in_its_registry_entry():
    bundled = load_registry().get("ehr_site_a")
    document = {
        "sources": [
            {
                "name": "clinic",
                "kind": "ehr",
                "format": "csv",
                "extract": "snapshot",
                "site": "clinic_x",
                "staging_profile": "synthea_csv",
                "entities": [
                    {"name": e.name, "required_columns": list(e.required_columns)} for e in bundled.entities
                ],
                "identifiers": [
                    {
                        "field": "NHS_NUMBER",
                        "type": "national_id",
                        "system": "https://fhir.nhs.uk/Id/nhs-number",
                    },
                    {"field": "INSURER_ID", "type": "member_id", "system_field": "INSURER"},
                    {"field": "Id", "type": "mrn"},
                ],
            }
        ]
    }
    registry = parse_registry(document)
    row = {**SYNTHEA, "Id": "p1", "SSN": None, "DRIVERS": None, "PASSPORT": None, "NHS_NUMBER": "485 777 3456",
           "INSURER_ID": "M-77", "INSURER": "acme"}  # fmt: skip
    [ids] = _run("clinic", "synthea_csv/person_pii/patients.sql", "raw_patients", [row], registry)
    assert ids == [
        {"type": "member_id", "system": "acme", "value": "M-77"},
        {"type": "mrn", "system": "clinic_x", "value": "p1"},
        {"type": "national_id", "system": "https://fhir.nhs.uk/Id/nhs-number", "value": "485 777 3456"},
    ]


def test_the_lab_manifest_cites_the_ordering_sites_patient_id_for_every_sample_of_a_person():
    base = {
        "SOURCE_PERSON_ID": "L1",
        "FIRST_NAME": "Ann",
        "LAST_NAME": "Lee",
        "BIRTH_DATE": "1980-01-02",
        "SEX": "F",
    }
    rows = [
        {**base, "ORDERING_SITE": "site_a", "ORDERING_SITE_PATIENT_ID": "p1"},
        {**base, "ORDERING_SITE": "site_b", "ORDERING_SITE_PATIENT_ID": "b-9"},
    ]
    ids = _run("lab", "lab_manifest/person_pii/sample_manifest.sql", "raw_sample_manifest", rows)
    expected = [
        {"type": "mrn", "system": "lab", "value": "L1"},
        {"type": "mrn", "system": "site_a", "value": "p1"},
        {"type": "mrn", "system": "site_b", "value": "b-9"},
    ]
    assert ids == [expected, expected]  # both rows alike: the person's rows stay one version


def test_payer_members_carry_their_member_id_and_ssn():
    row = {"DESYNPUF_ID": "00013D2EFD8E45D1", "FIRST_NAME": "Ann", "LAST_NAME": "Lee", "BIRTH_DATE": "19800102",
           "SEX": "2", "SSN": "999-11-2222", "ADDRESS": "1 Main St", "CITY": "Boston", "STATE": "MA", "ZIP": "02110",
           "PHONE": None}  # fmt: skip
    [ids] = _run("payer", "synpuf/person_pii/members.sql", "raw_members", [row])
    assert ids == [
        {"type": "member_id", "system": "payer", "value": "00013D2EFD8E45D1"},
        {"type": "national_id", "system": "us-ssn", "value": "999-11-2222"},
    ]


def test_without_the_registry_variable_a_csv_source_stages_no_typed_identifier():
    con = staging_connection(memory_limit="1GB", threads=1)
    con.execute(
        "CREATE VIEW raw_members AS SELECT 'X1' AS DESYNPUF_ID, 'Ann' AS FIRST_NAME, 'Lee' AS LAST_NAME, "
        "'19800102' AS BIRTH_DATE, '2' AS SEX, '999-11-2222' AS SSN, NULL AS ADDRESS, NULL AS CITY, NULL AS STATE, "
        "NULL AS ZIP, NULL AS PHONE, 'f' AS _source_file, 1 AS _line_number, 'b1' AS _batch_id, now() AS _ingested_at"
    )
    sql = (SQL_DIR / "synpuf/person_pii/members.sql").read_text()
    assert con.execute(f"SELECT identifiers, ssn FROM ({sql})", {"source": "payer"}).fetchall() == [
        ([], "999-11-2222")
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"field": "X", "type": "ssn"},  # not a type
        {"type": "mrn"},  # no field (CSV)
        {"field": "X", "type": "mrn", "issuer": "y"},  # unknown key
        "X",
    ],
)
def test_the_registry_refuses_malformed_identifier_entries(entry):
    document = copy.deepcopy(TINY_REGISTRY)
    document["sources"][0]["identifiers"] = [entry]
    with pytest.raises(ConfigError, match="identifier"):
        parse_registry(document)


def test_every_bundled_source_declares_its_identifiers():
    registry = load_registry()
    assert {s.name for s in registry if not s.identifiers} == set()
    assert {i.type for i in registry.get("lab").identifiers} == {"mrn"}


PATIENT_COLUMNS = (
    "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,"
    "BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE"
)
MANIFEST_COLUMNS = (
    "SAMPLE_ID,SOURCE_PERSON_ID,SPECIMEN_TYPE,SPECIMEN_DATE,TEST_NAME,GENOME_BUILD,FIRST_NAME,LAST_NAME,"
    "BIRTH_DATE,SEX,ORDERING_SITE,ORDERING_SITE_PATIENT_ID"
)


@pytest.fixture
def staged_with_identifiers(monkeypatch):
    """build_staging with the registry's identifier variables set before each source's SQL (what
    lib/staging/build.py's _stage_source does once it calls sources.set_identifier_variables)."""
    from rwe_assets.lib.staging import build

    original = build._stage_source

    def stage_source(con, lake_dir, source, current):
        set_identifier_variables(con, source)
        return original(con, lake_dir, source, current)

    monkeypatch.setattr(build, "_stage_source", stage_source)
    return build.build_staging


@pytest.mark.parametrize(("ordering_site", "linked"), [("site_a", True), ("site_b", False)])
def test_a_lab_sample_links_to_the_site_record_its_order_cites(
    tmp_path, staged_with_identifiers, ordering_site, linked
):
    """Site A's patient and a lab sample of hers under her married name: first name and birth date alone
    do not link them; the ordering site's patient id does, only when it is site A's."""
    import duckdb

    from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons
    from rwe_assets.lib.raw_ingest import ingest_batch
    from rwe_assets_tests.conftest import land

    registry = load_registry()
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    patient = "p-0042,1971-08-23,,,,,,Katherine,Oyelaran,,,,white,nonhispanic,F,,4 Birch Road,Cambridge,MA,,02139,,,0,0"
    sample = f"S1,L-7,blood,2024-05-01,panel,GRCh38,Katherine,Whitfield,1971-08-23,F,{ordering_site},P-0042"
    land(landing, "ehr_site_a", "b1", {"patients.csv": f"{PATIENT_COLUMNS}\n{patient}\n"})
    land(landing, "lab", "b1", {"sample_manifest.csv": f"{MANIFEST_COLUMNS}\n{sample}\n"})
    for source in ("ehr_site_a", "lab"):
        ingest_batch(lake_dir, landing, registry.get(source), "b1")
    staged_with_identifiers(lake_dir, registry)
    con = duckdb.connect()
    register_staged_persons(con, lake_dir)
    staged = dict(con.execute("SELECT source_system, identifiers FROM person_pii").fetchall())
    assert {"type": "mrn", "system": ordering_site, "value": "P-0042"} in staged["lab"]
    crosswalk = link(con, lake_dir, "test-key-for-linkage-tests").crosswalk.to_pylist()
    assert len({row["person_id"] for row in crosswalk}) == (1 if linked else 2)
