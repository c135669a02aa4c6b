"""person_pii-shaped records read straight from a generated landing zone (tests and benchmarks).

The pipeline reads staging.person_pii; this reader lets linkage be measured on all four generated
sources (the payer and lab person_pii staging come later) without running raw ingest and staging.
Files: ehr_site_a patients.csv (Synthea), ehr_site_b Patient*.ndjson (FHIR), payer members.csv,
lab sample_manifest.csv; every batch folder; .gz variants too. Truth: truth/person_records.csv.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def _csv(path_glob: str) -> str:
    return f"read_csv('{path_glob}', all_varchar = true, header = true, filename = true)"


def person_pii_sql(landing: Path) -> str:
    """One SELECT over every source present (a source without files is left out)."""
    parts = []
    site_a = sorted(landing.glob("ehr_site_a/*/patients.csv*"))
    if site_a:
        parts.append(
            f"""SELECT 'ehr_site_a' AS source_system, Id AS source_person_id, FIRST AS given_name,
            LAST AS family_name, MAIDEN AS maiden_name, BIRTHDATE AS birth_date, GENDER AS sex, SSN AS ssn,
            ADDRESS AS address_line, CITY AS city, STATE AS state, ZIP AS zip, NULL AS phone,
            split_part(filename, '/', -2) AS _batch_id FROM {_csv(str(landing / "ehr_site_a/*/patients.csv*"))}"""
        )
    if sorted(landing.glob("ehr_site_b/*/Patient*.ndjson*")):
        parts.append(_fhir_sql(landing))
    if sorted(landing.glob("payer/*/members.csv*")):
        parts.append(
            f"""SELECT 'payer' AS source_system, DESYNPUF_ID AS source_person_id, FIRST_NAME AS given_name,
            LAST_NAME AS family_name, NULL AS maiden_name, BIRTH_DATE AS birth_date, SEX AS sex, SSN AS ssn,
            ADDRESS AS address_line, CITY AS city, STATE AS state, ZIP AS zip, PHONE AS phone,
            split_part(filename, '/', -2) AS _batch_id FROM {_csv(str(landing / "payer/*/members.csv*"))}"""
        )
    if sorted(landing.glob("lab/*/sample_manifest.csv*")):
        parts.append(
            f"""SELECT DISTINCT 'lab' AS source_system, SOURCE_PERSON_ID AS source_person_id,
            FIRST_NAME AS given_name, LAST_NAME AS family_name, NULL AS maiden_name, BIRTH_DATE AS birth_date,
            SEX AS sex, NULL AS ssn, NULL AS address_line, NULL AS city, NULL AS state, NULL AS zip,
            NULL AS phone, split_part(filename, '/', -2) AS _batch_id
            FROM {_csv(str(landing / "lab/*/sample_manifest.csv*"))}"""
        )
    if not parts:
        raise FileNotFoundError(f"no person files under {landing}")
    return " UNION ALL ".join(f"({p})" for p in parts)


def _fhir_sql(landing: Path) -> str:
    glob = str(landing / "ehr_site_b/*/Patient*.ndjson*")
    return f"""
    WITH raw AS (
        SELECT split_part(filename, '/', -2) AS batch, from_json(json, '{{"id": "VARCHAR", "gender": "VARCHAR",
            "birthDate": "VARCHAR", "name": [{{"use": "VARCHAR", "family": "VARCHAR", "given": ["VARCHAR"]}}],
            "address": [{{"line": ["VARCHAR"], "city": "VARCHAR", "state": "VARCHAR", "postalCode": "VARCHAR"}}],
            "telecom": [{{"system": "VARCHAR", "value": "VARCHAR"}}],
            "identifier": [{{"system": "VARCHAR", "value": "VARCHAR"}}]}}') AS r
        FROM read_ndjson_objects('{glob}', filename = true)
    )
    SELECT 'ehr_site_b' AS source_system, r.id AS source_person_id,
        coalesce(list_filter(r.name, n -> n.use = 'official')[1], r.name[1]).given[1] AS given_name,
        coalesce(list_filter(r.name, n -> n.use = 'official')[1], r.name[1]).family AS family_name,
        list_filter(r.name, n -> n.use = 'maiden')[1].family AS maiden_name,
        r.birthDate AS birth_date, r.gender AS sex,
        list_filter(r.identifier, i -> i.system = 'http://hl7.org/fhir/sid/us-ssn')[1].value AS ssn,
        array_to_string(r.address[1].line, ' ') AS address_line, r.address[1].city AS city,
        r.address[1].state AS state, r.address[1].postalCode AS zip,
        list_filter(r.telecom, t -> t.system = 'phone')[1].value AS phone, batch AS _batch_id
    FROM raw
    """


def register_person_pii(con: duckdb.DuckDBPyConnection, data_dir: Path, name: str = "person_pii") -> int:
    """TEMP TABLE `name` from data_dir/landing; returns its row count."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {person_pii_sql(Path(data_dir) / 'landing')}")
    return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
