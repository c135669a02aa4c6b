"""End to end: the whole graph materialized on the bundled sample, as `rwe demo` runs it."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from rwe_assets.cli import SAMPLE_BATCHES, SAMPLE_DIR
from rwe_assets.definitions import defs
from rwe_assets.defs.jobs import run_landed_batches
from rwe_assets.lib import lake
from rwe_assets.lib.sources import load_registry
from rwe_assets_tests.conftest import red_error_checks


def test_whole_graph_on_the_bundled_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    for source, batch in SAMPLE_BATCHES.items():
        shutil.copytree(SAMPLE_DIR / batch, tmp_path / "landing" / source / batch)
    with dg.instance_for_test() as instance:
        outcomes = run_landed_batches(defs, instance, tmp_path / "landing", load_registry())
        assert sorted((key, result.success) for key, result in outcomes) == [
            ("ehr_sample__synthea27", True),
            ("ehr_sample_fhir__fhir13", True),
        ]
        build = defs.resolve_job_def("build").execute_in_process(instance=instance)
        assert build.success
        checks = build.get_asset_check_evaluations()
        assert checks and red_error_checks(build) == []

    def rows(*parts):
        return lake.open_table(lake.table_path(tmp_path / "lake", *parts)).to_pyarrow_dataset().count_rows()

    assert rows("staging", "person_source") == 27 + 13
    assert rows("raw", "ehr_sample", "encounters") == 604
    assert rows("staging", "visit") == 604 + rows("raw", "ehr_sample_fhir", "encounter") == 604 + 1215
    assert rows("staging", "note") == rows("raw", "ehr_sample_fhir", "documentreference") == 1215

    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse" / "rwe.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 27 + 13
        visits = con.execute("SELECT count(*) FROM cdm.visit_detail").fetchone()[0]
        assert visits == 604 + 1215  # every staged encounter is a visit_detail under its rolled-up visit
        notes = con.execute(
            "SELECT count(*), count(visit_occurrence_id), count(DISTINCT person_id) FROM cdm.note"
        ).fetchone()
        assert notes == (1215, 1215, 13)
        orphans = con.execute(
            "SELECT count(*) FROM cdm.condition_occurrence WHERE visit_occurrence_id IS NULL"
        ).fetchone()[0]
        assert orphans == 0
        assert con.execute("SELECT cdm_version_concept_id FROM cdm.cdm_source").fetchone()[0] == 756265
        # what nothing models stays in raw and is counted, by source and type, never dropped silently
        kept = dict(
            con.execute(
                "SELECT staged_table, staged_rows FROM results.reconciliation WHERE cdm_table = 'not_modelled'"
            ).fetchall()
        )
        assert kept["ehr_sample_fhir/Location"] == 44 and kept["ehr_sample_fhir/PractitionerRole"] == 43
        assert kept["ehr_sample/claims"] == rows("raw", "ehr_sample", "claims") > 0
        assert_no_pii(con, SAMPLE_DIR / "synthea27" / "patients.csv")
        assert_notes_hold_no_names(con, SAMPLE_DIR / "fhir13" / "Patient.000.ndjson.gz")
        assert_cookbook_runs(con)


def assert_cookbook_runs(con):
    """Every SQL recipe of docs/cookbook.md runs against the published database."""
    import re

    from rwe_assets.settings import REPO_DIR

    text = (REPO_DIR / "docs" / "cookbook.md").read_text()
    statements = [
        statement
        for block in re.findall(r"```sql\n(.*?)```", text, re.S)
        for statement in block.split(";")
        if any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())
    ]
    assert len(statements) >= 10
    for statement in statements:
        con.execute(statement).fetchall()


def assert_descendant_query_finds_the_concept_itself(con):
    """The cookbook's descendant query (type 2 diabetes, 201826, and its descendants) counts at least
    every person coded with 201826 itself: the vocabulary holds the concept's level-0 self row."""
    import re

    from rwe_assets.settings import REPO_DIR

    text = (REPO_DIR / "docs" / "cookbook.md").read_text()
    recipe = re.search(r"```sql\n(-- type 2 diabetes mellitus \(201826\).*?)```", text, re.S).group(1)
    coded = con.execute(
        "SELECT count(DISTINCT person_id) FROM cdm.condition_occurrence WHERE condition_concept_id = 201826"
    ).fetchone()[0]
    assert coded > 0
    assert con.execute(recipe).fetchone()[0] >= coded


def assert_no_pii(con, patients_csv):
    """No name, SSN, licence, passport or street line of the sample's patients is anywhere in the
    published database."""
    import csv

    with open(patients_csv, newline="", encoding="utf-8") as handle:
        patients = list(csv.DictReader(handle))
    secrets = {
        p[field]
        for p in patients
        for field in ("FIRST", "LAST", "SSN", "DRIVERS", "PASSPORT", "ADDRESS", "MAIDEN")
    } - {""}
    columns = con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR' AND table_schema IN ('cdm', 'results')"
    ).fetchall()
    for schema, table, column in columns:
        if table in ("concept", "concept_synonym", "vocabulary", "source_to_concept_map"):
            continue  # vocabulary text, not patient data
        found = con.execute(
            f'SELECT count(*) FROM {schema}.{table} WHERE "{column}" IN (SELECT unnest(?))', [sorted(secrets)]
        ).fetchone()[0]
        assert found == 0, f"{schema}.{table}.{column} holds patient identifiers"


def assert_notes_hold_no_names(con, patients_ndjson):
    """The FHIR sample's notes name their patient ('Sumiko254 Larue605 is a 60 year-old ...'); no
    name, street line or identifier of those patients is left anywhere in a published note."""
    import gzip
    import json

    with gzip.open(patients_ndjson, "rt", encoding="utf-8") as handle:
        patients = [json.loads(line) for line in handle]
    secrets = set()
    for patient in patients:
        for name in patient.get("name", []):
            secrets.update([*name.get("given", []), name.get("family", "")])
        for address in patient.get("address", []):
            secrets.update(address.get("line", []))
        secrets.update(identifier["value"] for identifier in patient.get("identifier", []))
    secrets = sorted(s for s in secrets if len(s) > 3)
    assert len(secrets) > 50
    leaked = con.execute(
        "SELECT count(*) FROM cdm.note, unnest(?) AS s(secret) WHERE contains(lower(note_text), lower(secret))",
        [secrets],
    ).fetchone()[0]
    assert leaked == 0


@pytest.mark.slow  # conftest's planted_build, shared with test_pii_sweep
def test_whole_graph_on_a_generated_population(planted_build):
    """The generator's four sources through the graph (with test_pii_sweep's bad records planted:
    quarantined rows, a flagged birth date): every check green, EHR sites linked."""
    import json

    data = planted_build / "data"
    outcomes = json.loads((planted_build / "outcomes.json").read_text())
    assert sorted(key.split("__")[0] for key, success in outcomes.items() if success) == [
        "ehr_site_a",
        "ehr_site_b",
        "lab",
        "payer",
    ]
    assert (planted_build / "build_success.txt").read_text() == "True"
    assert json.loads((planted_build / "red_checks.json").read_text()) == []

    import duckdb

    with duckdb.connect(str(data / "warehouse" / "rwe.duckdb"), read_only=True) as con:
        persons = con.execute("SELECT count(*) FROM cdm.person").fetchone()[0]
    crosswalk = lake.read_table(lake.table_path(data / "lake", "linkage", "person_crosswalk")).to_pylist()
    planted = {row["person_id"] for row in crosswalk if "planted" in row["source_person_id"].lower()}
    assert (
        len(planted) <= 2
    )  # test_pii_sweep's CSV and FHIR patients, a birth year kept: persons of their own
    assert 0 < persons - len(planted) <= 60
    with duckdb.connect(str(data / "warehouse" / "rwe.duckdb"), read_only=True) as con:
        # Claims and genomics reach the CDM, tied to persons that exist.
        for table in ("payer_plan_period", "cost", "specimen", "variant_occurrence"):
            assert con.execute(f"SELECT count(*) FROM cdm.{table}").fetchone()[0] > 0, table
        orphans = con.execute(
            "SELECT count(*) FROM cdm.variant_occurrence v JOIN cdm.specimen s USING (specimen_id) "
            "WHERE s.person_id NOT IN (SELECT person_id FROM cdm.person)"
        ).fetchone()[0]
        assert orphans == 0
        before_birth = con.execute(
            "SELECT count(*) FROM cdm.payer_plan_period JOIN cdm.person USING (person_id) "
            "WHERE payer_plan_period_start_date < birth_datetime::DATE"
        ).fetchone()[0]
        assert before_birth == 0  # newborns are enrolled from birth, not from January
        unaccounted = con.execute("SELECT sum(unaccounted) FROM results.reconciliation").fetchone()[0]
        assert unaccounted == 0
        assert con.execute("SELECT count(*) FROM results.linkage_metrics").fetchone()[0] > 0
        assert_descendant_query_finds_the_concept_itself(con)
    sources_per_person = {}
    for row in crosswalk:
        sources_per_person.setdefault(row["person_id"], set()).add(row["source_system"])
    assert any({"ehr_site_a", "ehr_site_b"} <= s for s in sources_per_person.values())
