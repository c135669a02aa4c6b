"""Column lineage of the CDM tables: derived from OMOP naming, pointing only at real staging columns."""

import dagster as dg

from rwe_assets.defs.cdm.lineage import RULES, SOURCE_TABLE, column_lineage, column_schema
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.staging.model import BY_NAME


def deps(table: str) -> dict[str, set[tuple[str, str]]]:
    lineage = column_lineage(cdm_spec().table(table))
    return {
        column: {(d.asset_key.to_user_string(), d.column_name) for d in column_deps}
        for column, column_deps in lineage.deps_by_column.items()
    }


def test_event_table_columns_trace_back_to_staged_event_columns():
    lineage = deps("condition_occurrence")
    assert lineage["person_id"] == {("linkage/person_crosswalk", "person_id")}
    assert lineage["condition_concept_id"] == {("staging/event", "code"), ("staging/event", "vocabulary_id")}
    assert lineage["condition_start_date"] == {("staging/event", "start_datetime")}
    assert lineage["condition_end_datetime"] == {("staging/event", "end_datetime")}
    assert lineage["visit_occurrence_id"] == {("staging/event", "visit_key")}
    assert "condition_occurrence_id" not in lineage  # from the id map, not from staging
    assert deps("person")["gender_concept_id"] == {("staging/person_source", "gender_source_value")}


def test_every_lineage_rule_names_a_real_staging_column_and_every_cdm_table_has_a_schema():
    for staged in SOURCE_TABLE.values():
        columns = set(BY_NAME[staged].column_names)
        for _, sources in RULES[staged]:
            assert set(sources) <= columns, (staged, sources)
    for table in cdm_spec().tables:
        schema = column_schema(table)
        assert isinstance(schema, dg.TableSchema)
        assert [c.name for c in schema.columns] == [f.name for f in table.fields]
