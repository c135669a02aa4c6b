"""Column lineage of the CDM tables, derived from the SQL that writes each column (sqlglot), and column
schemas described by the OHDSI field spec."""

from __future__ import annotations

import shutil
from importlib import resources

import dagster as dg
import pytest

from rwe_assets.defs.cdm import lineage as lineage_module
from rwe_assets.defs.cdm.lineage import (
    _CROSSWALK_COLUMNS,
    column_lineage,
    column_schema,
    derive_lineage,
    field_descriptions,
    lineage_fingerprint,
)
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.staging.model import BY_NAME


@pytest.fixture(scope="module")
def derived():
    """The lineage derived now from the SQL (no cache), as {table: {column: {asset: {columns}}}}."""
    tables = derive_lineage()
    assert lineage_module.LINEAGE_GAPS == {}  # every statement parsed and traced
    return {
        table: {column: by_asset(leaves) for column, leaves in columns.items()}
        for table, columns in tables.items()
    }


def by_asset(leaves) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, column in lineage_module._asset_columns(leaves):
        out.setdefault(key.to_user_string(), set()).add(column)
    return out


def test_known_columns_come_from_the_columns_their_sql_reads(derived):
    measurement, drug, person = derived["measurement"], derived["drug_exposure"], derived["person"]
    # the unit's text is the staged unit, not the event's code (what the name rule guessed)
    assert measurement["unit_source_value"] == {"staging/event": {"unit_source_value"}}
    # the unit concept is looked up in the vocabulary from the staged unit (unit_map.sql)
    assert measurement["unit_concept_id"]["staging/event"] == {"unit_source_value"}
    assert "concept_id" in measurement["unit_concept_id"]["vocab/concept"]
    # a type concept is a constant chosen by the kind of record: claim type and event kind
    assert drug["drug_type_concept_id"] == {"staging/event": {"claim_type", "event_kind"}}
    assert measurement["measurement_source_value"] == {"staging/event": {"code"}}
    # the standard concept is the vocabulary's ("Maps to" target); the code is the lookup key
    assert measurement["measurement_concept_id"] == {"vocab/concept": {"concept_id"}}
    assert {"birth_date", "birth_year"} <= person["year_of_birth"]["staging/person_source"]
    assert person["person_id"] == {"linkage/person_crosswalk": {"person_id"}}
    # an UPDATE adds what it sets: drug ends are cut at death (drug_end_at_death.sql)
    assert derived["drug_exposure"]["drug_exposure_end_date"]["cdm/death"] == {"death_date"}
    assert derived["condition_era"]["condition_concept_id"] == {
        "cdm/condition_occurrence": {"condition_concept_id"}
    }


def test_every_table_the_sql_writes_has_lineage_to_real_columns(derived):
    written = {"person", "visit_occurrence", "visit_detail", "condition_occurrence", "drug_exposure"}
    written |= {"procedure_occurrence", "measurement", "observation", "device_exposure", "death", "note"}
    written |= {"location", "provider", "care_site", "cost", "payer_plan_period", "observation_period"}
    written |= {"condition_era", "drug_era", "dose_era"}
    assert written <= set(derived)
    spec = cdm_spec()
    real = {f"staging/{name}": set(table.column_names) for name, table in BY_NAME.items()}
    real["linkage/person_crosswalk"] = set(_CROSSWALK_COLUMNS)
    for table in spec.tables:
        layer = "vocab" if table.is_vocabulary else "cdm"
        real[f"{layer}/{table.name}"] = {f.name for f in table.fields}
    for table, columns in derived.items():
        assert set(columns) <= {f.name for f in spec.table(table).fields}, table
        for column, sources in columns.items():
            for asset, names in sources.items():
                assert names <= real[asset], (table, column, asset, names - real[asset])


def test_lineage_follows_a_change_to_the_sql(tmp_path, monkeypatch):
    """Rewrite measurement.sql so the unit's text comes from the code: the lineage says so, and the
    cache key changes with the SQL. A statement sqlglot cannot read is a recorded gap, not a crash."""
    copy = tmp_path / "cdm"
    shutil.copytree(str(resources.files("rwe_assets.lib") / "sql" / "cdm"), copy)
    sql = (copy / "measurement.sql").read_text()
    changed = sql.replace("left(m.unit_source_value, 50) AS unit_source_value", "m.code AS unit_source_value")
    assert changed != sql
    (copy / "measurement.sql").write_text(changed)
    (copy / "note.sql").write_text("INSERT INTO cdm.note SELECT FROM WHERE ((")
    before = lineage_fingerprint()
    monkeypatch.setattr(lineage_module, "_SQL_DIR", copy)
    assert lineage_fingerprint() != before
    tables = derive_lineage()
    assert by_asset(tables["measurement"]["unit_source_value"]) == {"staging/event": {"code"}}
    assert "note" not in tables and list(lineage_module.LINEAGE_GAPS) == ["note.sql statement 1"]


def test_dagster_metadata_and_the_cache(tmp_path, monkeypatch, derived):
    monkeypatch.setenv("RWE_CACHE_DIR", str(tmp_path))
    lineage_module.derived_lineage.cache_clear()
    try:
        meta = column_lineage(cdm_spec().table("measurement"))
        assert list(tmp_path.glob("cdm_column_lineage-*.json"))  # written for the next process
        lineage_module.derived_lineage.cache_clear()
        assert column_lineage(cdm_spec().table("measurement")) == meta  # read back from the file
    finally:
        lineage_module.derived_lineage.cache_clear()
    assert isinstance(meta, dg.TableColumnLineage)
    deps = {(d.asset_key.to_user_string(), d.column_name) for d in meta.deps_by_column["unit_source_value"]}
    assert deps == {("staging/event", "unit_source_value")}
    assert column_lineage(cdm_spec().table("concept")) is None  # loaded from files, no SQL writes it


def test_column_schemas_carry_the_field_specs_guidance():
    descriptions = field_descriptions()
    for table in cdm_spec().tables:
        schema = column_schema(table)
        assert [c.name for c in schema.columns] == [f.name for f in table.fields]
    columns = {c.name: c for c in column_schema(cdm_spec().table("measurement")).columns}
    assert columns["unit_source_value"].description == descriptions[("measurement", "unit_source_value")]
    assert "ETL:" in columns["measurement_type_concept_id"].description
    assert columns["person_id"].description
    described = sum(bool(c.description) for t in cdm_spec().tables for c in column_schema(t).columns)
    # every field the spec gives guidance for (367 of 432; the rest say NA)
    assert (
        described == sum((t.name, f.name) in descriptions for t in cdm_spec().tables for f in t.fields) > 300
    )
