from __future__ import annotations

import ast
import csv
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib import cdm_spec
from rwe_assets.lib.cdm_spec import (
    CdmTable,
    cdm_ddl,
    create_table_sql,
    duckdb_type,
    expected_columns,
    load_cdm_spec,
)
from rwe_assets.lib.dqd_spec import DqdCheck, DqdRow, applicable_checks, dqd_catalogue, load_dqd_catalogue

SPEC_DIR = resources.files("rwe_assets.lib") / "spec"
DUMMY_VALUES = {
    "INTEGER": "1",
    "BIGINT": "1",
    "DOUBLE": "1.5",
    "DATE": "DATE '2020-01-01'",
    "TIMESTAMP": "TIMESTAMP '2020-01-01 10:00:00'",
    "VARCHAR": "'x'",
}


def raw_cdm_fields() -> list[dict[str, str]]:
    """The official field-level CSV read independently of the module under test."""
    text = (SPEC_DIR / "omop_cdm_5.4" / "OMOP_CDMv5.4_Field_Level.csv").read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines()))


def live_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str, str]]:
    return con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()


def insert_sql(table: CdmTable, null_field: str | None = None) -> str:
    """An INSERT giving every required field a value (NULL for null_field) and leaving the rest NULL."""
    names = [f.name for f in table.fields if f.is_required]
    values = [
        "NULL" if f.name == null_field else DUMMY_VALUES[f.duckdb_type] for f in table.fields if f.is_required
    ]
    columns = ", ".join(f'"{n}"' for n in names)
    return f'INSERT INTO cdm."{table.name}" ({columns}) VALUES ({", ".join(values)})'


@pytest.fixture
def cdm_con():
    con = duckdb.connect()
    for statement in cdm_ddl():
        con.execute(statement)
    yield con
    con.close()


# --- the spec model -----------------------------------------------------------------------------


def test_every_v54_table_is_in_the_spec_in_official_order():
    official = list(dict.fromkeys(row["cdmTableName"] for row in raw_cdm_fields()))
    spec = cdm_spec.cdm_spec()
    assert len(official) == 39
    assert list(spec.table_names) == official
    assert sum(len(t.fields) for t in spec.tables) == len(raw_cdm_fields()) == 432


def test_known_facts_of_the_spec():
    spec = cdm_spec.cdm_spec()
    person = spec.table("person")
    assert person.fields[0].name == "person_id"
    assert person.primary_key == ("person_id",)
    gender = person.column("gender_concept_id")
    assert (gender.is_required, gender.cdm_datatype, gender.duckdb_type) == (True, "integer", "INTEGER")
    assert (gender.fk_table, gender.fk_field, gender.fk_domain) == ("concept", "concept_id", "Gender")
    assert [f.name for f in spec.table("condition_occurrence").fields[:3]] == [
        "condition_occurrence_id",
        "person_id",
        "condition_concept_id",
    ]
    assert spec.table("drug_era").column("drug_concept_id").fk_class == "Ingredient"
    assert spec.table("cdm_source").column("cdm_version_concept_id").is_required
    assert spec.table("visit_occurrence").column("visit_type_concept_id").cdm_datatype == "Integer"
    assert spec.table("measurement").column("value_as_number").duckdb_type == "DOUBLE"
    assert spec.table("measurement").column("measurement_datetime").duckdb_type == "TIMESTAMP"
    assert spec.table("episode_event").primary_key == ()


def test_field_order_names_and_lengths_follow_the_csv():
    spec = cdm_spec.cdm_spec()
    for table in spec.tables:
        assert [f.ordinal for f in table.fields] == list(range(1, len(table.fields) + 1))
    assert spec.table("note_nlp").column("offset").ordinal == 5  # spelled "offset" (quoted) in the CSV
    assert spec.table("person").column("gender_source_value").max_length == 50
    assert spec.table("drug_exposure").column("sig").max_length is None  # varchar(MAX)
    assert spec.table("person").column("person_id").max_length is None


def test_vocabulary_and_results_tables_are_marked():
    spec = cdm_spec.cdm_spec()
    vocabulary = {t.name for t in spec.tables if t.is_vocabulary}
    assert {"concept", "vocabulary", "concept_ancestor", "drug_strength"} <= vocabulary
    assert len(vocabulary) == 10
    assert spec.table("person").schema == "cdm"
    assert spec.table("cohort").schema == "results"
    assert spec.table("person").description.startswith("This table serves as the central identity")


def test_spec_is_loaded_once():
    assert cdm_spec.cdm_spec() is cdm_spec.cdm_spec()
    assert dqd_catalogue() is dqd_catalogue()


# --- type mapping -------------------------------------------------------------------------------


def test_every_datatype_in_the_csv_is_mapped():
    datatypes = {row["cdmDatatype"] for row in raw_cdm_fields()}
    mapped = {datatype: duckdb_type(datatype) for datatype in datatypes}  # raises on an unmapped one
    assert set(mapped.values()) <= set(DUMMY_VALUES)
    assert mapped["integer"] == mapped["Integer"] == "INTEGER"
    assert mapped["datetime"] == "TIMESTAMP"


@pytest.mark.parametrize(
    ("datatype", "expected"),
    [
        ("integer", "INTEGER"),
        ("Integer", "INTEGER"),
        ("bigint", "BIGINT"),
        ("float", "DOUBLE"),
        ("date", "DATE"),
        ("datetime", "TIMESTAMP"),
        ("varchar(50)", "VARCHAR"),
        ("varchar(MAX)", "VARCHAR"),
    ],
)
def test_type_mapping(datatype: str, expected: str):
    assert duckdb_type(datatype) == expected


@pytest.mark.parametrize("datatype", ["numeric", "varchar", "varchar(n)", "timestamp with time zone"])
def test_unknown_datatype_is_an_error(datatype: str):
    with pytest.raises(ConfigError, match="CDM datatype"):
        duckdb_type(datatype)


# --- DDL against DuckDB -------------------------------------------------------------------------


def test_ddl_creates_every_table_as_the_spec_says(cdm_con):
    spec = cdm_spec.cdm_spec()
    tables = cdm_con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cdm' ORDER BY table_name"
    ).fetchall()
    assert sorted(spec.table_names) == [name for (name,) in tables]
    official: dict[str, list[str]] = {}
    for row in raw_cdm_fields():
        official.setdefault(row["cdmTableName"], []).append(row["cdmFieldName"].strip('"'))
    for table in spec.tables:
        live = live_columns(cdm_con, "cdm", table.name)
        assert [(name, data_type) for name, data_type, _ in live] == expected_columns(table.name)
        assert [name for name, _, _ in live] == official[table.name]
        assert [nullable == "NO" for _, _, nullable in live] == [f.is_required for f in table.fields]


def test_ddl_is_idempotent_and_takes_a_schema_and_subset():
    con = duckdb.connect()
    statements = cdm_ddl("scratch", ["person", "death"])
    assert statements[0] == 'CREATE SCHEMA IF NOT EXISTS "scratch"'
    assert len(statements) == 3
    for statement in statements + statements:
        con.execute(statement)
    tables = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'scratch'")
    assert sorted(name for (name,) in tables.fetchall()) == ["death", "person"]


def test_required_fields_reject_null(cdm_con):
    for table in cdm_spec.cdm_spec().tables:
        cdm_con.execute(insert_sql(table))  # every required field given: accepted
        for field in (f for f in table.fields if f.is_required):
            with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
                cdm_con.execute(insert_sql(table, null_field=field.name))


def test_primary_keys_are_opt_in(cdm_con):
    person = cdm_spec.cdm_spec().table("person")
    cdm_con.execute(insert_sql(person))
    cdm_con.execute(insert_sql(person))  # default DDL: duplicates load, DQD isPrimaryKey reports them
    assert "PRIMARY KEY" not in create_table_sql("person")
    con = duckdb.connect()
    for statement in cdm_ddl(tables=["person"], primary_keys=True):
        con.execute(statement)
    con.execute(insert_sql(person))
    with pytest.raises(duckdb.ConstraintException):
        con.execute(insert_sql(person))


def test_reserved_word_column_is_quoted():
    assert '"offset" VARCHAR' in create_table_sql("note_nlp")


# --- extension point (G-CDM and the like) -------------------------------------------------------

EXTRA_FIELDS = (
    "cdmTableName,cdmFieldName,isRequired,cdmDatatype,userGuidance,etlConventions,isPrimaryKey,"
    "isForeignKey,fkTableName,fkFieldName,fkDomain,fkClass\r\n"
    "demo_variant,demo_variant_id,Yes,bigint,NA,NA,Yes,No,NA,NA,NA,NA\r\n"
    "demo_variant,specimen_id,Yes,integer,NA,NA,No,Yes,SPECIMEN,SPECIMEN_ID,NA,NA\r\n"
    "demo_variant,hgvs,No,varchar(MAX),NA,NA,No,No,NA,NA,NA,NA\r\n"
)


def test_extra_field_csvs_add_tables(tmp_path):
    fields = tmp_path / "demo_field_level.csv"
    fields.write_bytes(b"\xef\xbb\xbf" + EXTRA_FIELDS.encode())  # BOM and CRLF, as Excel writes them
    tables = tmp_path / "demo_table_level.csv"
    text = 'cdmTableName,schema,tableDescription\ndemo_variant,CDM,"A \u201cdemo\u201d"\n'
    tables.write_bytes(text.encode("cp1252"))  # Windows-1252: the curly quotes are bytes 0x93 and 0x94

    spec = load_cdm_spec(extra_field_csvs=[fields], extra_table_csvs=[tables])

    assert spec.table_names[:39] == cdm_spec.cdm_spec().table_names
    demo = spec.table("demo_variant")
    assert spec.table_names[-1] == "demo_variant"
    assert demo.description == "A \u201cdemo\u201d"
    assert demo.primary_key == ("demo_variant_id",)
    assert (demo.column("specimen_id").fk_table, demo.column("specimen_id").fk_field) == (
        "specimen",
        "specimen_id",
    )
    con = duckdb.connect()
    for statement in cdm_ddl(spec=spec, tables=["demo_variant"]):
        con.execute(statement)
    assert [(n, t) for n, t, _ in live_columns(con, "cdm", "demo_variant")] == expected_columns(demo)


def test_extra_field_csv_cannot_redefine_an_official_table(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(EXTRA_FIELDS.replace("demo_variant", "person"), encoding="utf-8")
    with pytest.raises(ConfigError, match="person already defined"):
        load_cdm_spec(extra_field_csvs=[path])


def test_extra_field_csv_with_unknown_datatype_names_the_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(EXTRA_FIELDS.replace("varchar(MAX)", "text"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.csv row 3: CDM datatype"):
        load_cdm_spec(extra_field_csvs=[path])


def test_extra_field_csv_without_the_official_columns_is_an_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("table,field\ndemo,demo_id\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected columns cdmTableName, cdmFieldName"):
        load_cdm_spec(extra_field_csvs=[path])


# --- DQD catalogue ------------------------------------------------------------------------------


def find(check_name: str, table: str, field: str | None = None, concept_id: int | None = None) -> DqdCheck:
    matches = [
        c
        for c in applicable_checks()
        if (c.check_name, c.table, c.field) == (check_name, table, field)
        and (concept_id is None or concept_id in c.concept_ids)
    ]
    assert len(matches) == 1, (check_name, table, field, matches)
    return matches[0]


def test_check_types_are_the_27_described():
    catalogue = dqd_catalogue()
    assert len(catalogue.check_types) == 27
    levels = [t.level for t in catalogue.check_types]
    assert (levels.count("TABLE"), levels.count("FIELD"), levels.count("CONCEPT")) == (4, 20, 3)
    is_required = catalogue.check_type("isRequired", "FIELD")
    assert (is_required.severity, is_required.filter_clauses) == ("fatal", (("isRequired", "==", "Yes"),))
    assert catalogue.check_type("fkDomain", "FIELD").filter_clauses == (
        ("isForeignKey", "==", "Yes"),
        ("fkDomain", "!=", ""),
    )


def test_every_check_type_applies_somewhere():
    counts: dict[str, int] = {}
    for check in applicable_checks():
        counts[check.check_name] = counts.get(check.check_name, 0) + 1
    assert set(counts) == {t.name for t in dqd_catalogue().check_types}
    assert counts["cdmTable"] == 39
    assert counts["cdmField"] == 432
    assert counts["isRequired"] == 180
    assert counts["isPrimaryKey"] == 28


def test_known_field_level_thresholds_and_params():
    assert find("isRequired", "condition_occurrence", "condition_concept_id").threshold_pct == 0.0
    standard = find("standardConceptRecordCompleteness", "condition_occurrence", "condition_concept_id")
    assert standard.threshold_pct == 5.0
    assert find("fkDomain", "condition_occurrence", "condition_concept_id").params == {
        "fkDomain": "Condition"
    }
    assert find("isForeignKey", "condition_occurrence", "person_id").params == {
        "fkTableName": "person",
        "fkFieldName": "person_id",
    }
    assert find("fkClass", "drug_era", "drug_concept_id").params == {"fkClass": "Ingredient"}
    high = find("plausibleValueHigh", "drug_exposure", "days_supply")
    assert (high.threshold_pct, high.params, high.severity) == (
        1.0,
        {"plausibleValueHigh": "365"},
        "characterization",
    )
    low = find("plausibleValueLow", "condition_occurrence", "condition_start_date")
    assert low.params == {"plausibleValueLow": "'19500101'"}
    assert find("measureValueCompleteness", "drug_exposure", "days_supply").threshold_pct == 100.0
    assert find("plausibleTemporalAfter", "condition_occurrence", "condition_start_date").params == {
        "plausibleTemporalAfterTableName": "person",
        "plausibleTemporalAfterFieldName": "birth_datetime",
    }
    assert find("withinVisitDates", "condition_occurrence", "condition_start_date").threshold_pct == 5.0
    source_value = find("sourceValueCompleteness", "measurement", "measurement_source_value")
    assert (source_value.threshold_pct, source_value.params) == (
        10.0,
        {"standardConceptFieldName": "measurement_concept_id"},
    )


def test_known_table_and_concept_level_checks():
    assert find("measurePersonCompleteness", "death").threshold_pct == 100.0
    assert find("measurePersonCompleteness", "visit_occurrence").threshold_pct == 95.0
    assert find("measurePersonCompleteness", "observation_period").threshold_pct == 0.0
    gender = find("plausibleGender", "condition_occurrence", "condition_concept_id", concept_id=79758)
    assert (gender.level, gender.concept_ids, gender.threshold_pct) == ("CONCEPT", (79758,), 5.0)
    assert gender.params == {"plausibleGender": "Male"}
    units = find("plausibleUnitConceptIds", "measurement", "measurement_concept_id", concept_id=3013721)
    assert (units.threshold_pct, units.params) == (5.0, {"plausibleUnitConceptIds": "8645,8923"})
    descendants = find(
        "plausibleGenderUseDescendants", "condition_occurrence", "condition_concept_id", 4090861
    )
    assert descendants.concept_ids == (4090861, 4025213)


def test_checks_only_where_the_catalogue_says_they_apply():
    checks = {(c.check_name, c.table, c.field) for c in applicable_checks(["FIELD"])}
    assert ("isPrimaryKey", "person", "person_id") in checks
    assert ("isPrimaryKey", "person", "gender_concept_id") not in checks
    assert ("isRequired", "drug_exposure", "days_supply") not in checks
    assert ("cdmDatatype", "person", "person_source_value") not in checks  # DQD checks integer fields only
    assert ("plausibleDuringLife", "drug_era", "drug_concept_id") not in checks  # "No" in the CSV
    assert {c.level for c in applicable_checks(["TABLE", "CONCEPT"])} == {"TABLE", "CONCEPT"}


def test_every_check_targets_a_table_and_field_of_the_spec():
    spec = cdm_spec.cdm_spec()
    for check in applicable_checks():
        table = spec.table(check.table)
        if check.field is not None:
            table.column(check.field)
        for name in ("fkTableName", "plausibleTemporalAfterTableName"):
            if name in check.params:
                spec.table(check.params[name])


def test_extra_dqd_rows_add_checks(tmp_path):
    path = tmp_path / "demo_dqd_field_level.csv"
    path.write_text(
        "cdmTableName,cdmFieldName,isRequired,isRequiredThreshold,isForeignKey,fkTableName,fkFieldName\n"
        "DEMO_VARIANT,specimen_id,Yes,2.5,Yes,SPECIMEN,SPECIMEN_ID\n",
        encoding="utf-8",
    )
    catalogue = load_dqd_catalogue({"FIELD": [path]})
    demo = [c for c in applicable_checks(["FIELD"], catalogue) if c.table == "demo_variant"]
    assert [(c.check_name, c.field, c.threshold_pct) for c in demo] == [
        ("cdmField", "specimen_id", 0.0),
        ("isRequired", "specimen_id", 2.5),
        ("isForeignKey", "specimen_id", 0.0),
    ]
    assert demo[2].params == {"fkTableName": "specimen", "fkFieldName": "specimen_id"}


def test_a_blank_cell_satisfies_no_filter_clause():
    fk_domain = dqd_catalogue().check_type("fkDomain", "FIELD")
    row = DqdRow("FIELD", "t", "f", (), None, {"isForeignKey": "Yes"})
    assert not fk_domain.applies_to(row)
    assert fk_domain.applies_to(
        DqdRow("FIELD", "t", "f", (), None, {"isForeignKey": "Yes", "fkDomain": "Drug"})
    )
    assert not fk_domain.applies_to(
        DqdRow("TABLE", "t", None, (), None, {"isForeignKey": "Yes", "fkDomain": "Drug"})
    )
    assert row.threshold_pct("fkDomain") == 0.0


# --- packaging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ["omop_cdm_5.4", "dqd_v5.4"])
def test_spec_files_ship_with_license_and_readme(directory: str):
    names = {p.name for p in (SPEC_DIR / directory).iterdir()}
    assert {"LICENSE", "README.md"} <= names


def test_module_is_pure_python_without_dagster():
    tree = ast.parse(Path(cdm_spec.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"dagster", "duckdb", "os"}}
