"""The project's one SQL loader (lib/sql_loader.py) and what now goes through it: the CDM build's
folder, the DQD check templates, and the FHIR event template's rows (MedicationRequest among them)."""

from __future__ import annotations

import json
import re
from importlib import resources

import duckdb
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib import sql_loader
from rwe_assets.lib.cdm import sql as cdm_sql
from rwe_assets.lib.quality.catalogue import QUALITY_SQL, fill_expression, fill_template, scan_expressions
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.sql_loader import Fragment, SqlFolder
from rwe_assets.lib.staging import sql_templates
from rwe_assets.lib.staging.build import SQL_DIR, staging_connection
from rwe_assets.lib.staging.lifecycle import create_batch_info

SQL_ROOT = resources.files("rwe_assets.lib") / "sql"
EVENT_DIR = SQL_DIR / "fhir_r4" / "event"


def _folder(tmp_path, **files: str) -> SqlFolder:
    for name, text in files.items():
        (tmp_path / f"{name}.sql").write_text(text)
    return SqlFolder(tmp_path, "probe_dir")


def test_a_folder_quotes_names_writes_fragments_inlines_sections_and_never_fills_comments(tmp_path):
    folder = _folder(
        tmp_path,
        q="-- {schema} in a comment stays\n-- name: ids\nSELECT id FROM {schema}.t WHERE z ~ '[0-9]{3}'\n"
        "-- name: top\nSELECT * FROM {ids} LIMIT {n}\n",
    )
    assert folder.render("q", "top", {"schema": 'a "b"', "n": Fragment("2")}) == (
        'SELECT * FROM (\nSELECT id FROM "a ""b""".t WHERE z ~ \'[0-9]{3}\'\n) LIMIT 2'
    )
    assert folder.render("q", fill={"schema": "s", "ids": Fragment("x"), "n": Fragment("1")}).startswith(
        "-- {schema} in a comment stays"
    )
    assert sql_loader.placeholders(folder.text("q")) == {"schema", "ids", "n"}


def test_an_unknown_placeholder_or_value_is_an_error_naming_the_folder_and_file(tmp_path):
    folder = _folder(tmp_path, bad="SELECT * FROM {table} WHERE x = $limit_value;\n")
    with pytest.raises(
        ConfigError, match=r"probe_dir/bad.sql: expected a known placeholder, found \{table\}"
    ):
        folder.render("bad")
    with pytest.raises(ConfigError, match=r"expected values for \['limit_value'\]"):
        folder.run(duckdb.connect(), "bad", fill={"table": "t"})


def test_run_binds_exactly_the_values_each_statement_uses(tmp_path):
    folder = _folder(
        tmp_path,
        two="CREATE TABLE {t} AS SELECT $a AS v;\n-- $b in a comment is not a parameter;\nINSERT INTO {t} VALUES ($b);\n",
    )
    con = duckdb.connect()
    folder.run(con, "two", fill={"t": "vals"}, values={"a": 1, "b": 2, "unused": 3})
    assert sorted(con.execute("SELECT v FROM vals").fetchall()) == [(1,), (2,)]


def test_the_cdm_folder_is_the_shared_loader_with_the_concept_ids_as_default_values():
    assert cdm_sql.cdm_sql().label == "lib/sql/cdm" and cdm_sql.Fragment is Fragment
    con = duckdb.connect()
    assert cdm_sql.execute(con, "SELECT $male AS m").fetchone() == (cdm_sql.PARAMETERS["male"],)


def test_a_check_template_is_filled_by_the_loader_with_the_planners_sql_text_as_is():
    names = {"table": '"cdm"."person"', "field": '"gender_concept_id"'}
    assert fill_template("isRequired", names).endswith(
        'SELECT count(*) FILTER (WHERE "gender_concept_id" IS NULL) AS num_violated_rows,\n'
        '       count(*) AS num_denominator_rows\nFROM "cdm"."person"\n'
    )
    violated, _ = scan_expressions("isRequired")
    assert (
        fill_expression("isRequired", violated, names)
        == 'count(*) FILTER (WHERE "gender_concept_id" IS NULL)'
    )
    with pytest.raises(ConfigError, match=r"lib/sql/quality/isRequired.sql: expected a known placeholder"):
        fill_template("isRequired", {"table": "t"})


@pytest.mark.parametrize("layer", ["cdm", "quality", "staging", "genomics"])
def test_the_sql_folders_use_one_placeholder_style(layer):
    """`{name}` for SQL text, `$name` for values: no `{{name}}`, `@name` or `%(name)s` placeholders."""
    other = re.compile(r"\{\{\s*\w+\s*\}\}|(?<![\w'])@[a-z_]\w*|%\(\w+\)s")
    files = [p for p in (SQL_ROOT / layer).rglob("*.sql")]  # type: ignore[attr-defined]
    assert files
    for path in files:
        code = sql_loader.LINE_COMMENT.sub("", path.read_text(encoding="utf-8"))
        assert not other.search(code), f"{path}: {other.search(code).group(0)}"


# --- the FHIR event template: MedicationRequest is a row of it -----------------------------------------


def test_medication_request_is_a_template_row_with_a_measured_step_and_observation_is_not():
    text = sql_templates.profile_sql_text(EVENT_DIR / "medicationrequest.sql")
    assert "measured AS (" in text and text.rstrip().endswith("FROM measured")
    status, intent, event = (
        text.index(s) for s in ("rwe_fhir_status_failure(", "'intent'", "rwe_fhir_event_failure(")
    )
    assert status < intent < event  # an order that is only a plan is PLANNED, whatever else is missing
    procedure = sql_templates.profile_sql_text(EVENT_DIR / "procedure.sql")
    assert "measured" not in procedure and procedure.rstrip().endswith("FROM picked")
    observation = EVENT_DIR / "observation.sql"
    assert sql_templates.profile_sql_text(observation) == observation.read_text()


def _stage_medication_request(resource: dict) -> tuple:
    con = staging_connection()
    for entity in ("medication", "medicationrequest", "procedure"):  # what the profile's macros read
        con.execute(
            f"CREATE TEMP TABLE raw_{entity} AS SELECT rid AS resource_id, j AS resource_json, 'f' AS _source_file, "
            "1::BIGINT AS _line_number, 'b' AS _batch_id, now() AS _ingested_at FROM (VALUES ($rid, $j)) v(rid, j) "
            f"WHERE {'true' if entity == 'medicationrequest' else 'false'}",
            {"rid": resource["id"], "j": json.dumps(resource)},
        )
    create_batch_info(con, SourceRegistry(()), {})  # the batch order the profile's macros read versions by
    con.execute(sql_templates.profile_macros(SQL_DIR / "fhir_r4"))
    text = sql_templates.profile_sql_text(EVENT_DIR / "medicationrequest.sql")
    return con.execute(f"SELECT days_supply, refills, _failure FROM ({text})", {"source": "s"}).fetchone()


def test_the_generated_medication_request_measures_days_and_checks_intent_before_the_event():
    order = {
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2020-01-02",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1"}]},
        "dosageInstruction": [{"timing": {"repeat": {"boundsDuration": {"value": 2, "code": "wk"}}}}],
        "dispenseRequest": {"numberOfRepeatsAllowed": 3},
    }  # fmt: skip
    assert _stage_medication_request(order) == (14, 3, None)
    plan_without_subject = {**order, "intent": "plan", "subject": None}
    failure = _stage_medication_request(plan_without_subject)[2]
    assert (failure["reason"], failure["field"]) == ("PLANNED", "intent")
    weeks_negative = {
        **order,
        "dosageInstruction": [{"timing": {"repeat": {"boundsDuration": {"value": -1}}}}],
    }
    failure = _stage_medication_request(weeks_negative)[2]
    assert (failure["reason"], failure["field"]) == ("NEGATIVE_QUANTITY", "expectedSupplyDuration")


def test_the_quality_folder_is_read_once_per_file():
    QUALITY_SQL.clear()
    first = QUALITY_SQL.text("isRequired")
    assert QUALITY_SQL.text("isRequired") is first
