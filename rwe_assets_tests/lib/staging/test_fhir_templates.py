"""FHIR event SQL from one template and a table of resource paths (lib/staging/sql_templates.py), and
the period checks every profile shares (staging/_macros.sql)."""

from __future__ import annotations

import pytest
import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.staging import sql_templates
from rwe_assets.lib.staging.build import SQL_DIR, staging_connection
from rwe_assets.lib.staging.lifecycle import create_batch_info

EVENT_DIR = SQL_DIR / "fhir_r4" / "event"


def _rows() -> dict:
    with (EVENT_DIR / "_events.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_every_template_row_has_its_stub_and_every_stub_its_row():
    stubs = {
        p.stem
        for p in EVENT_DIR.glob("*.sql")
        if not p.name.startswith("_") and sql_templates._only_comments(p.read_text())
    }
    assert stubs == set(_rows()) and len(stubs) >= 9


def test_a_stub_runs_as_its_filled_template_and_a_plain_file_as_written():
    generated = sql_templates.profile_sql_text(EVENT_DIR / "procedure.sql")
    assert generated.startswith("-- FHIR R4 Procedure -> staging.event ('procedure').")
    assert "FROM raw_procedure" in generated and "'Procedure/' || rwe_text(resource_id)" in generated
    assert "{" + "schema}" not in generated  # every placeholder filled
    observation = EVENT_DIR / "observation.sql"
    assert sql_templates.profile_sql_text(observation) == observation.read_text()


def test_every_generated_statement_parses_against_an_empty_raw_view():
    con = staging_connection()
    for entity in ["medication", *_rows()]:  # the macros read raw_medication
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW raw_{entity} AS SELECT NULL::VARCHAR AS resource_id, "
            "NULL::VARCHAR AS resource_json, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _line_number, "
            "NULL::VARCHAR AS _batch_id, NULL::TIMESTAMPTZ AS _ingested_at WHERE false"
        )
    create_batch_info(con, SourceRegistry(()), {})  # the batch order a resource reads another's versions by
    con.execute(sql_templates.profile_macros(SQL_DIR / "fhir_r4"))
    for entity in _rows():
        text = sql_templates.profile_sql_text(EVENT_DIR / f"{entity}.sql")
        columns = [d[0] for d in con.execute(f"SELECT * FROM ({text}) LIMIT 0", {"source": "s"}).description]
        assert {"record_key", "start_datetime", "code", "_failure"} <= set(columns), entity


def test_a_stub_holding_sql_or_a_row_missing_a_path_is_an_error(tmp_path):
    (tmp_path / "_event_template.sql").write_text((EVENT_DIR / "_event_template.sql").read_text())
    rows = (EVENT_DIR / "_events.yaml").read_text()
    assert "  start_field: Procedure.performed[x]\n" in rows
    (tmp_path / "_events.yaml").write_text(rows.replace("  start_field: Procedure.performed[x]\n", ""))
    (tmp_path / "device.sql").write_text("-- a stub\n")
    sql_templates.render_rows.cache_clear()
    with pytest.raises(ConfigError, match=r"_events.yaml \[device\]: expected a value for 'start_field'"):
        sql_templates.profile_sql_text(tmp_path / "device.sql")
    sql_templates.render_rows.cache_clear()
    (tmp_path / "_events.yaml").write_text((EVENT_DIR / "_events.yaml").read_text())
    (tmp_path / "device.sql").write_text("SELECT 1\n")
    with pytest.raises(ConfigError, match="expected a stub of comments"):
        sql_templates.profile_sql_text(tmp_path / "device.sql")
    sql_templates.render_rows.cache_clear()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2020-01-02T10:00:00", None, None),
        ("", None, ("INVALID_DATE", "start")),
        ("2020-01", None, ("INVALID_DATE", "start")),  # a partial date does not parse
        ("2020-01-02", "not a date", ("INVALID_DATE", "end")),
        ("2020-01-02", "2020-01-01", ("END_BEFORE_START", "end")),
    ],
)
def test_one_period_check_for_every_profile(start, end, expected):
    con = staging_connection()
    con.execute(sql_templates.SHARED_MACROS.read_text())
    failure = con.execute(
        "SELECT rwe_period_failure('start', $start, 'end', $end)", {"start": start, "end": end}
    ).fetchone()[0]
    assert (failure and (failure["reason"], failure["field"])) == expected


def test_the_profiles_event_checks_call_the_shared_period_check():
    shared = sql_templates.profile_macros(SQL_DIR / "synthea_csv")
    assert shared.index("MACRO rwe_period_failure") < shared.index("MACRO rwe_csv_event_failure")
    for profile in ("fhir_r4", "synthea_csv"):
        own = (SQL_DIR / profile / "_macros.sql").read_text()
        assert "rwe_first_failure([\n        {'reason': 'INVALID_DATE'" not in own  # no copy of its body
        assert "rwe_period_failure(start_field, start_text, end_field, end_text));" in own
