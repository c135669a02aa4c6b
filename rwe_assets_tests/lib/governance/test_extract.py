"""The de-identified extract (lib/governance/extract.py) on a CDM built from the bundled Synthea CSV and
FHIR samples: every Safe Harbor rule, and a scan of the whole extract for the samples' identifiers."""

from __future__ import annotations

import argparse
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.governance import audit
from rwe_assets.lib.governance import extract as deid
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR, Settings

KEY = "test-linkage-key-0123456789abcdef"
AS_OF = date(2026, 12, 6)
SAMPLES = {"ehr_sample": "synthea27", "ehr_sample_fhir": "fhir13"}
# Locations added to the source: restricted ZIP3 areas, a ZIP+4, an open area and a foreign postcode.
EXTRA_ZIPS = {9001: "03601", 9002: "059011234", 9003: "89301", 9004: "02155", 9005: "SW1A 1AA"}
PII_COLUMNS = (
    "source_person_id", "record_key", "given_name", "family_name", "maiden_name", "ssn", "address_line",
    "phone", "drivers_license", "passport", "contact_names", "city", "zip",
)  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A data directory whose warehouse/rwe.duckdb is the CDM of both bundled samples, plus results."""
    data_dir = tmp_path_factory.mktemp("deid") / "data"
    registry, lake_dir, landing = load_registry(), data_dir / "lake", data_dir / "landing"
    for source, folder in SAMPLES.items():
        shutil.copytree(REPO_DIR / "data" / "sample" / folder, landing / source / "b1")
        ingest_batch(lake_dir, landing, registry.get(source), "b1")
    build_staging(lake_dir, registry)
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, KEY)
    path = build_cdm(lake_dir, REPO_DIR / "vocab", data_dir / "warehouse").path
    with duckdb.connect(str(path)) as cdm:
        _add_locations_and_results(cdm)
    path.rename(data_dir / "warehouse" / "rwe.duckdb")
    return data_dir


def _add_locations_and_results(con) -> None:
    for location_id, zip_code in EXTRA_ZIPS.items():
        con.execute(
            "INSERT INTO cdm.location (location_id, city, state, zip) VALUES (?, 'Townsville', 'NH', ?)",
            [location_id, zip_code],
        )
    con.execute(
        "CREATE TABLE results.achilles_analysis AS SELECT * FROM (VALUES (2, 'gender_concept_id', NULL), "
        "(3, 'year_of_birth', NULL), (1101, 'state', 'gender_concept_id')) t(analysis_id, stratum_1_name, "
        "stratum_2_name)"
    )
    for i in range(3, 6):
        con.execute(f"ALTER TABLE results.achilles_analysis ADD COLUMN stratum_{i}_name VARCHAR")
    con.execute(
        "CREATE TABLE results.achilles_results AS SELECT * FROM (VALUES (2, '8507', 7), (2, '8532', 3), "
        "(3, '1931', 9), (1101, 'MA', 12)) t(analysis_id, stratum_1, count_value)"
    )
    con.execute(
        "CREATE TABLE results.incidence_rate AS SELECT * FROM (VALUES ('all', 40, 6, 12.5, false), "
        "('65+', 3, 1, 3.1, false)) t(age_group, persons, outcomes, rate_per_1000py, suppressed)"
    )
    for column in ("ci_lower", "ci_upper", "prior_outcome_persons"):
        con.execute(f"ALTER TABLE results.incidence_rate ADD COLUMN {column} DOUBLE DEFAULT 1")
    con.execute("CREATE TABLE results.unmapped_person_values AS SELECT 'not for sharing' AS value")


@pytest.fixture(scope="module")
def extract(built) -> duckdb.DuckDBPyConnection:
    """The extract attached beside the source (`src`), read-only."""
    settings = Settings.from_env({}, data_dir=built, linkage_key=KEY)
    deid.export(settings, as_of=AS_OF)
    con = duckdb.connect(str(built / "warehouse" / deid.DEID_FILE), read_only=True)
    con.execute(f"ATTACH '{built / 'warehouse' / 'rwe.duckdb'}' AS src (READ_ONLY)")
    yield con
    con.close()


def _person_tables(con) -> dict[str, list[str]]:
    """Extract tables with a person and dates -> their date columns."""
    rows = con.execute(
        "SELECT table_name, list(column_name) FILTER (data_type IN ('DATE', 'TIMESTAMP')), "
        "bool_or(column_name = 'person_id') FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'cdm' GROUP BY 1"
    ).fetchall()
    return {t: cols for t, cols, has_person in rows if has_person and cols and t != "person"}


# --- dates ----------------------------------------------------------------------------------------


def test_offsets_are_keyed_never_zero_and_in_range():
    key = deid.shift_key(KEY)
    offsets = [deid.shift_days(key, i) for i in range(20_000)]
    assert set(offsets) == set(range(-180, 0)) | set(range(1, 181))  # every value, 0 never
    assert offsets == [deid.shift_days(key, i) for i in range(20_000)]  # the same every run
    other = deid.shift_key("another-linkage-key-0123456789")
    assert sum(a == deid.shift_days(other, i) for i, a in enumerate(offsets)) < 200  # the key decides


def test_every_date_moves_by_one_offset_per_person(extract):
    """Shifted dates differ from the source; all of a person's dates in every table move by the same
    days, so intervals within a person are exact (persons aged 90+ aside: their early rows clip)."""
    shifts = []
    for table, columns in _person_tables(extract).items():
        id_column = extract.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND "
            "schema_name = 'cdm' AND table_name = ? AND column_index = 1",
            [table],
        ).fetchone()[0]
        for column in columns:
            shifts.append(
                f"SELECT e.person_id, date_diff('day', s.{column}::DATE, e.{column}::DATE) AS days "
                f"FROM cdm.{table} e JOIN src.cdm.{table} s USING ({id_column}) WHERE s.{column} IS NOT NULL"
            )
    per_person = extract.execute(
        f"SELECT person_id, min(days), max(days), count(*) FROM ({' UNION ALL '.join(shifts)}) "
        "WHERE person_id NOT IN (SELECT person_id FROM deid.person WHERE age_90_or_older) GROUP BY 1"
    ).fetchall()
    assert len(per_person) >= 30 and sum(n for *_, n in per_person) > 10_000
    assert all(low == high for _, low, high, _ in per_person)  # one offset per person
    assert all(low != 0 and -180 <= low <= 180 for _, low, _, _ in per_person)
    key = deid.shift_key(KEY)
    assert all(low == deid.shift_days(key, person) for person, low, _, _ in per_person)  # the keyed offset


def test_birth_keeps_only_the_shifted_year(extract):
    month_day = extract.execute(
        "SELECT count(month_of_birth) + count(day_of_birth) + count(birth_datetime) FROM cdm.person"
    ).fetchone()[0]
    assert month_day == 0
    births = extract.execute(
        "SELECT person_id, s.birth_datetime::DATE, e.year_of_birth FROM cdm.person e "
        "JOIN src.cdm.person s USING (person_id) JOIN deid.person d USING (person_id) "
        "WHERE NOT d.age_90_or_older AND s.birth_datetime IS NOT NULL"
    ).fetchall()
    key = deid.shift_key(KEY)
    assert len(births) > 30
    assert all(shown == (born + timedelta(deid.shift_days(key, p))).year for p, born, shown in births)
    assert any(shown != born.year for _, born, shown in births)  # some shifts cross a new year


def test_no_age_above_89_can_be_derived(extract):
    """From the year of birth to the latest date of a person's rows, or the extract date while
    alive, at most 89 years; the sample's person born in 1927 and alive is one of them."""
    latest = " UNION ALL ".join(
        f"SELECT person_id, max(greatest({', '.join(f'{c}::DATE' for c in cols)})) AS d FROM cdm.{t} GROUP BY 1"
        for t, cols in _person_tables(extract).items()
    )
    ages = extract.execute(
        f"""
        SELECT p.person_id, year(greatest(max(l.d), CASE WHEN p.person_id NOT IN (SELECT person_id
               FROM cdm.death) THEN DATE '{AS_OF}' END)) - any_value(p.year_of_birth) AS age,
               any_value(f.age_90_or_older) AS flagged
        FROM cdm.person p LEFT JOIN ({latest}) l USING (person_id) JOIN deid.person f USING (person_id)
        GROUP BY p.person_id
        """
    ).fetchall()
    assert max(age for _, age, _ in ages) <= 89
    flagged = [person for person, age, old in ages if old]
    assert flagged and all(age == 89 for _, age, old in ages if old)
    earliest = " UNION ALL ".join(
        f"SELECT person_id, min(least({', '.join(f'{c}::DATE' for c in cols)})) AS d FROM cdm.{t} GROUP BY 1"
        for t, cols in _person_tables(extract).items()
    )
    before_birth = extract.execute(
        f"SELECT count(*) FROM ({earliest}) e JOIN cdm.person p USING (person_id) "
        "WHERE year(e.d) < p.year_of_birth AND person_id IN (SELECT person_id FROM deid.person WHERE age_90_or_older)"
    ).fetchone()[0]
    assert before_birth == 0  # no row of a 90+ person predates the shown birth year


# --- geography, free text, identifiers ------------------------------------------------------------


def test_zip_is_three_digits_and_restricted_areas_are_000(extract):
    zips = dict(
        extract.execute("SELECT location_id, zip FROM cdm.location WHERE location_id > 9000").fetchall()
    )
    assert zips == {9001: "000", 9002: "000", 9003: "000", 9004: "021", 9005: None}
    lengths = extract.execute(
        "SELECT DISTINCT length(zip) FROM cdm.location WHERE zip IS NOT NULL"
    ).fetchall()
    assert lengths == [(3,)]
    cleared = extract.execute(
        "SELECT count(address_1) + count(address_2) + count(city) + count(county) + count(location_source_value) "
        "+ count(latitude) + count(longitude), count(state) FROM cdm.location"
    ).fetchone()
    assert cleared[0] == 0 and cleared[1] > 100  # the state stays


def test_notes_are_dropped_and_counted(extract):
    assert (
        extract.execute(
            "SELECT (SELECT count(*) FROM cdm.note) + (SELECT count(*) FROM cdm.note_nlp)"
        ).fetchone()[0]
        == 0
    )
    note = extract.execute("SELECT * FROM deid.table_counts WHERE \"table\" = 'note'").fetchone()
    assert note[1] > 1000 and note[-1] == note[1]  # rows_source all emptied


def test_names_and_identifiers_of_providers_and_sites_are_removed(extract):
    provider = extract.execute(
        "SELECT count(provider_name) + count(npi) + count(dea) + count(provider_source_value) FROM cdm.provider"
    ).fetchone()[0]
    site = extract.execute(
        "SELECT count(care_site_name) + count(care_site_source_value), count(*) FROM cdm.care_site"
    ).fetchone()
    assert provider == 0 and site[0] == 0 and site[1] > 100
    assert extract.execute("SELECT count(care_site_name) FROM src.cdm.care_site").fetchone()[0] > 100


def test_rare_payer_values_are_cleared_and_shared_ones_kept(extract):
    per_value = extract.execute(
        "SELECT payer_source_value, count(DISTINCT person_id) FROM cdm.payer_plan_period "
        "WHERE payer_source_value IS NOT NULL GROUP BY 1"
    ).fetchall()
    assert per_value and all(persons >= 5 for _, persons in per_value)
    rare = extract.execute(
        "SELECT count(*) FROM (SELECT payer_source_value FROM src.cdm.payer_plan_period GROUP BY 1 "
        "HAVING count(DISTINCT person_id) < 5)"
    ).fetchone()[0]
    assert rare > 0  # the sample has rare payers, so the rule did something


def _identifiers(lake_dir: Path) -> set[str]:
    """Every staged PII value of the samples (names, SSNs, streets, phones, licences, passports,
    source person ids and record ids, cities, ZIPs), as written."""
    table = lake.read_table(lake.table_path(lake_dir, "staging", "person_pii"))
    values = set()
    for column in PII_COLUMNS:
        values |= {v.strip() for v in table.column(column).to_pylist() if v and len(v.strip()) >= 4}
    return values


def _text_of(con, catalog: str) -> str:
    """Every value of every table of a DuckDB catalog, as text, in one string."""
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [catalog]
    ).fetchall()
    parts = []
    for schema, table in tables:
        rows = con.execute(
            f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{catalog}".{schema}."{table}"'
        ).fetchall()
        parts.extend("\x1f".join(v for v in row if v is not None) for row in rows)
    return "\n".join(parts)


def _found(identifiers: set[str], text: str) -> list[str]:
    """The identifiers in the text: a one-word identifier as a whole word (a ZIP inside a longer code
    number is not that ZIP), any other (street, SSN, phone, UUID) anywhere."""
    words = set(re.findall(r"[0-9A-Za-z]+", text))
    return sorted(i for i in identifiers if (i in words if re.fullmatch(r"[0-9A-Za-z]+", i) else i in text))


def test_a_scan_of_the_whole_extract_finds_no_identifier(built, extract):
    identifiers = _identifiers(built / "lake")
    assert len(identifiers) > 200
    assert (
        _found(identifiers, _text_of(extract, extract.execute("SELECT current_database()").fetchone()[0]))
        == []
    )
    raw = (built / "warehouse" / deid.DEID_FILE).read_bytes()  # stored bytes too, wherever they are
    assert [i for i in identifiers if len(i) >= 8 and i.encode() in raw] == []
    # the scan finds what is there: the limited data set still holds cities and ZIPs
    assert len(_found(identifiers, _text_of(extract, "src"))) > 20


# --- results, reconciliation, the file ------------------------------------------------------------


def test_only_shareable_results_are_copied_with_small_cells_suppressed(extract):
    achilles = extract.execute(
        "SELECT analysis_id, stratum_1, count_value FROM results.achilles_results ORDER BY 1, 2"
    ).fetchall()
    assert achilles == [(2, "8507", 7), (1101, "MA", 12)]  # 3 is a small cell; birth years never leave
    incidence = dict(
        (group, (persons, outcomes, rate, hidden))
        for group, persons, outcomes, rate, hidden in extract.execute(
            "SELECT age_group, persons, outcomes, rate_per_1000py, suppressed FROM results.incidence_rate"
        ).fetchall()
    )
    assert incidence == {"all": (40, 6, 12.5, False), "65+": (None, None, None, True)}
    tables = {
        t
        for (t,) in extract.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'results' AND database_name = current_database()"
        ).fetchall()
    }
    assert tables == {"achilles_analysis", "achilles_results", "incidence_rate"}


def test_counts_reconcile_and_rules_are_listed(extract):
    rows = extract.execute("SELECT * FROM deid.table_counts").fetchall()
    for table, source, kept, no_person, early, emptied in rows:
        assert source == kept + no_person + early + emptied, table
        assert extract.execute(f"SELECT count(*) FROM cdm.{table}").fetchone()[0] == kept
        assert extract.execute(f"SELECT count(*) FROM src.cdm.{table}").fetchone()[0] == source
    assert sum(r[4] for r in rows) > 0  # the 90+ person's childhood rows went, counted
    rules = extract.execute("SELECT count(*) FROM deid.rules WHERE action = 'cleared'").fetchone()[0]
    assert rules == sum(len(c) for c in deid.CLEARED.values())


def test_every_source_value_column_of_the_spec_has_a_decision():
    """A new *_source_value / *_source_id column must be cleared or listed as code-like."""
    from rwe_assets.lib.cdm_spec import cdm_spec

    columns = {
        (t.name, f.name)
        for t in cdm_spec().tables
        if not t.is_vocabulary and t.name not in deid.EMPTIED
        for f in t.fields
        if f.name.endswith(("_source_value", "_source_id"))
    }
    decided = {(t, c) for t, cols in deid.CLEARED.items() for c in cols}
    decided |= {(t, c) for t, cols in deid.RARE_TEXT.items() for c in cols}
    assert columns - decided - deid.CODE_SOURCE_VALUES == set()


def test_a_refused_extract_leaves_the_previous_file(tmp_path, built):
    source = tmp_path / "rwe.duckdb"
    shutil.copy(built / "warehouse" / "rwe.duckdb", source)
    target = tmp_path / deid.DEID_FILE
    deid.write_extract(source, target, KEY, minimum=5, as_of=AS_OF)
    before = target.read_bytes()
    with duckdb.connect(str(source)) as con:  # dates of nobody in particular: no rule covers them
        con.execute("CREATE TABLE cdm.visit_log AS SELECT DATE '2020-01-01' AS visited_on")
    with pytest.raises(deid.ExtractRefused, match="visit_log"):
        deid.write_extract(source, target, KEY, minimum=5, as_of=AS_OF)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([deid.DEID_FILE, "rwe.duckdb"])
    assert oct(target.stat().st_mode & 0o777) == "0o640"


def test_the_asset_writes_the_extract_and_audits_it(tmp_path, built, monkeypatch):
    from rwe_assets.defs.governance.extract import extract_assets
    from rwe_assets.resources import RweConfig

    data_dir = _published_copy(tmp_path, built)
    monkeypatch.setenv("RWE_LINKAGE_KEY", KEY)
    result = dg.materialize(extract_assets, resources={"rwe": RweConfig(data_dir=str(data_dir))})
    assert result.success
    metadata = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert metadata["persons"].value > 30 and metadata["rows_dropped_by_table"].value["note"] > 1000
    assert (data_dir / "warehouse" / deid.DEID_FILE).exists()
    assert _exports(Settings.from_env({"RWE_LINKAGE_KEY": KEY}, data_dir=data_dir)) == 1


def test_the_command_writes_the_extract_and_audits_it(tmp_path, built, capsys):
    data_dir = _published_copy(tmp_path, built)
    settings = Settings.from_env({"RWE_LINKAGE_KEY": KEY}, data_dir=data_dir)
    assert deid.run(settings, argparse.Namespace(as_of=AS_OF)) == 0
    assert "1 aged 90 or older" in capsys.readouterr().out
    assert _exports(settings) == 1
    with duckdb.connect(str(data_dir / "warehouse" / "rwe.duckdb")) as con:
        con.execute("CREATE TABLE cdm.visit_log AS SELECT DATE '2020-01-01' AS visited_on")
    assert deid.run(settings, argparse.Namespace(as_of=AS_OF)) == 1  # refused, and audited as such
    assert "visit_log" in capsys.readouterr().err and _exports(settings) == 2
    assert audit.read_trail(settings).to_pylist()[-1]["outcome"] == "refused"
    (data_dir / "warehouse" / "rwe.duckdb").unlink()
    assert deid.run(settings, argparse.Namespace(as_of=AS_OF)) == 2  # nothing published: refused
    assert "publish the CDM first" in capsys.readouterr().err


def _published_copy(tmp_path: Path, built: Path) -> Path:
    data_dir = tmp_path / "data"
    (data_dir / "warehouse").mkdir(parents=True)
    shutil.copy(built / "warehouse" / "rwe.duckdb", data_dir / "warehouse" / "rwe.duckdb")
    return data_dir


def _exports(settings) -> int:
    rows = [r for r in audit.read_trail(settings).to_pylist() if r["action"] == "export"]
    assert all('"path"' in r["what"] and "Townsville" not in r["what"] for r in rows)
    return len(rows)
