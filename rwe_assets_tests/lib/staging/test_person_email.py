"""Email in staging.person_pii (issue 18): FHIR Patient.telecom with system email, and an optional
EMAIL column of a Synthea-profile patients.csv (real Synthea files have none and stage as before).
Linkage keys it; it never reaches person_source (what the CDM reads) nor any linkage table in clear."""

from __future__ import annotations

import duckdb

from rwe_assets.lib import lake
from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons
from rwe_assets.lib.sources import load_registry, set_identifier_variables
from rwe_assets.lib.staging.build import SQL_DIR, staging_connection
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry, ndjson, patient, stage, staged

KEY = "test-key-for-linkage-tests"
SYNTHEA = {"Id": "p1", "FIRST": "Ann", "LAST": "Lee", "MAIDEN": "", "BIRTHDATE": "1980-01-02", "GENDER": "F",
           "SSN": "", "DRIVERS": "", "PASSPORT": "", "ADDRESS": "1 Main St", "CITY": "Boston",
           "STATE": "Massachusetts", "ZIP": "02110"}  # fmt: skip


def _synthea_emails(rows: list[dict]) -> list:
    """person_pii.email that the synthea_csv SQL stages for `rows` (raw patients.csv columns, text)."""
    con = staging_connection(memory_limit="1GB", threads=1)
    columns = list(rows[0])
    values = ", ".join("(" + ", ".join(f"'{row[c]}'" for c in columns) + ")" for row in rows)
    provenance = (
        "'f.csv' AS _source_file, 1::BIGINT AS _line_number, 'b1' AS _batch_id, now() AS _ingested_at"
    )
    con.execute(
        f"CREATE VIEW raw_patients AS SELECT *, {provenance} FROM (VALUES {values}) AS t({', '.join(columns)})"
    )
    set_identifier_variables(con, load_registry().get("ehr_site_a"))
    sql = (SQL_DIR / "synthea_csv/person_pii/patients.sql").read_text()
    query = f"SELECT email FROM ({sql}) ORDER BY source_person_id"
    return [r[0] for r in con.execute(query, {"source": "ehr_site_a"}).fetchall()]


def test_a_synthea_csv_email_column_is_staged_and_real_synthea_files_stage_as_before():
    with_email = [{**SYNTHEA, "EMAIL": "Ann.Lee@Mail.org"}, {**SYNTHEA, "Id": "p2", "EMAIL": " "}]
    assert _synthea_emails(with_email) == ["Ann.Lee@Mail.org", None]  # as written; linkage normalizes
    assert _synthea_emails([SYNTHEA]) == [None]  # Synthea's own header: no EMAIL column


def test_a_fhir_email_is_keyed_for_linkage_and_kept_out_of_person_source(tmp_path):
    email = "ann.lee.1980@mail.org"
    person = patient(
        "p1", telecom=[{"system": "phone", "value": "555-123-4567"}, {"system": "email", "value": email}]
    )
    other = patient(
        "p2", name=[{"family": "Quint", "given": ["Bea"]}], telecom=[{"system": "email", "value": "bq@x.org"}]
    )
    lake_dir, _ = stage(tmp_path, fhir_registry(), {"Patient.000.ndjson": ndjson(person, other)})
    assert [r["email"] for r in staged(lake_dir, "person_pii")] == [email, "bq@x.org"]
    assert not [r for r in staged(lake_dir, "person_source") if email in map(str, r.values())]

    con = duckdb.connect()
    register_staged_persons(con, lake_dir)
    link(con, lake_dir, KEY)
    token = con.execute("SELECT t_email FROM lk_tokens WHERE source_person_id = 'p1'").fetchone()[0]
    assert token is not None and token == con.execute("SELECT lk_hmac(?)", [f"email|{email}"]).fetchone()[0]
    for table in ("tokens", "pairs", "person_crosswalk", "clerical_review", "metrics"):
        rows = lake.read_table(lake.table_path(lake_dir, "linkage", table))
        text = " ".join(
            str(v) for row in (rows.to_pylist() if rows is not None else []) for v in row.values()
        )
        assert "ann.lee" not in text.lower() and "mail.org" not in text.lower(), table
