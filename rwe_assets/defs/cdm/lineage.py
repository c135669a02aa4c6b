"""Column schema and column lineage of the CDM tables, for the Dagster UI.

The schema comes from the OMOP specification the DDL is generated from. Lineage is derived from
OMOP's naming conventions, which the build's SQL follows (lib/sql/cdm/<table>.sql): in a table built
from staged events, `<x>_concept_id`, `<x>_source_concept_id` and `<x>_source_value` come from the
event's code and vocabulary, `<x>_date`/`_datetime` from its start, `<x>_end_date`/`_end_datetime`
from its end, `visit_*_id` from its visit, `provider_id` from its provider; `person_id` always comes
from the linkage crosswalk. Columns no rule covers (ids from the id maps, type concepts) have none.
"""

import dagster as dg

from rwe_assets.lib.cdm_spec import CdmTable

CROSSWALK = dg.AssetKey(["linkage", "person_crosswalk"])
# CDM table -> the staging table its rows come from
SOURCE_TABLE = {
    "condition_occurrence": "event",
    "drug_exposure": "event",
    "procedure_occurrence": "event",
    "measurement": "event",
    "observation": "event",
    "device_exposure": "event",
    "visit_occurrence": "visit",
    "visit_detail": "visit",
    "note": "note",
    "person": "person_source",
    "death": "person_source",
}
# column-name rule (suffix) -> staging columns, per staging table
RULES = {
    "event": (
        ("_source_concept_id", ("code", "vocabulary_id")),
        ("_concept_id", ("code", "vocabulary_id")),
        ("_source_value", ("code",)),
        ("_end_date", ("end_datetime",)),
        ("_end_datetime", ("end_datetime",)),
        ("_date", ("start_datetime",)),
        ("_datetime", ("start_datetime",)),
        ("visit_occurrence_id", ("visit_key",)),
        ("visit_detail_id", ("visit_key",)),
        ("provider_id", ("provider_key",)),
        ("value_as_number", ("value_as_number",)),
        ("value_as_string", ("value_as_string",)),
        ("unit_source_value", ("unit_source_value",)),
        ("quantity", ("quantity",)),
        ("days_supply", ("days_supply",)),
    ),
    "visit": (
        ("_source_value", ("code",)),
        ("_concept_id", ("visit_class", "code", "vocabulary_id")),
        ("_end_date", ("end_datetime",)),
        ("_end_datetime", ("end_datetime",)),
        ("_start_date", ("start_datetime",)),
        ("_start_datetime", ("start_datetime",)),
        ("provider_id", ("provider_key",)),
        ("care_site_id", ("care_site_key",)),
    ),
    "note": (
        ("note_text", ("note_text",)),
        ("note_title", ("title",)),
        ("note_date", ("note_datetime",)),
        ("note_datetime", ("note_datetime",)),
        ("note_class_concept_id", ("code", "vocabulary_id")),
        ("note_source_value", ("code",)),
        ("visit_occurrence_id", ("visit_key",)),
    ),
    "person_source": (
        ("gender_", ("gender_source_value",)),
        ("race_", ("race_source_value",)),
        ("ethnicity_", ("ethnicity_source_value",)),
        ("birth", ("birth_date",)),
        ("death_", ("death_date",)),
        ("location_id", ("city", "state", "zip", "county")),
    ),
}


def column_schema(table: CdmTable) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, f.duckdb_type) for f in table.fields])


def column_lineage(table: CdmTable) -> dg.TableColumnLineage | None:
    staged = SOURCE_TABLE.get(table.name)
    if staged is None:
        return None
    source = dg.AssetKey(["staging", staged])
    deps = {}
    for field in table.fields:
        if field.name == "person_id":
            deps[field.name] = [dg.TableColumnDep(CROSSWALK, "person_id")]
            continue
        columns = _matching_rule(staged, field.name)
        if columns:
            deps[field.name] = [dg.TableColumnDep(source, column) for column in columns]
    return dg.TableColumnLineage(deps)


def _matching_rule(staged: str, name: str) -> tuple[str, ...]:
    for pattern, columns in RULES[staged]:
        if name.endswith(pattern) or (staged == "person_source" and name.startswith(pattern)):
            return columns
    return ()
