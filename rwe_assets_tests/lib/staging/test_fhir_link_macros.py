"""The links one FHIR resource makes to another (an EOB's Claim, a note's replaced notes) are read by one
macro each (fhir_r4/_macros.sql), which the profile SQL and incremental staging's cross-batch check
(lib/staging/incremental_scope.py) both call: neither spells the resource paths again."""

from __future__ import annotations

import inspect
import json

from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.staging import incremental_scope, sql_templates
from rwe_assets.lib.staging.build import SQL_DIR, staging_connection
from rwe_assets.lib.staging.lifecycle import create_batch_info

FHIR = SQL_DIR / "fhir_r4"
# where each link's resource path is spelled: only in the macro file
PATHS = {"claim": ('"claim"', "claim.reference"), "replaces": ("relatesTo", "'replaces'")}


def _con():
    con = staging_connection(memory_limit="1GB", threads=1)
    # table macros of the profile read the Medication and Procedure resources and the batch order: none here
    for entity in ("medication", "procedure"):
        con.execute(
            f"CREATE TABLE raw_{entity} (resource_id VARCHAR, resource_json VARCHAR, _source_file VARCHAR, "
            "_line_number BIGINT, _batch_id VARCHAR, _ingested_at TIMESTAMPTZ)"
        )
    create_batch_info(con, SourceRegistry(()), {})
    con.execute(sql_templates.profile_macros(FHIR))
    return con


def test_an_eobs_claim_is_read_by_one_macro_from_the_parsed_resource_or_its_text():
    con = _con()
    eobs = [
        {"claim": {"reference": "Claim/c-1"}},
        {"claim": {"reference": "https://fhir.example.org/r4/Claim/c-2/_history/3"}},
        {"claim": {"reference": "urn:uuid:6f1c2b7e"}},
        {"claim": {"display": "no reference"}},
        {},
    ]
    texts = [json.dumps(e) for e in eobs]
    from_text = [
        con.execute("SELECT rwe_fhir_adjudicated_claim_json($j)", {"j": t}).fetchone()[0] for t in texts
    ]
    parsed = [
        con.execute(
            'SELECT rwe_fhir_adjudicated_claim(from_json($j, \'{"claim": {"reference": "VARCHAR"}}\'))',
            {"j": t},
        ).fetchone()[0]
        for t in texts
    ]
    assert from_text == parsed == ["c-1", "c-2", "6f1c2b7e", None, None]


def test_a_notes_replaced_notes_are_the_targets_of_its_replaces_entries_only():
    note = {
        "relatesTo": [
            {"code": "replaces", "target": {"reference": "DocumentReference/n-1"}},
            {"code": "appends", "target": {"reference": "DocumentReference/n-2"}},
            {"code": "replaces", "target": {"reference": "urn:uuid:n-3"}},
        ]
    }
    con = _con()
    found = con.execute("SELECT rwe_fhir_replaced_notes($j)", {"j": json.dumps(note)}).fetchone()[0]
    assert found == ["n-1", "n-3"]
    assert con.execute("SELECT rwe_fhir_replaced_notes('{}')").fetchone()[0] is None


def test_the_profile_sql_and_the_incremental_check_call_the_macros_and_spell_no_path():
    users = {
        "rwe_fhir_adjudicated_claim": ["cost/claim.sql", "cost/explanationofbenefit.sql"],
        "rwe_fhir_replaced_notes": ["note/documentreference.sql"],
    }
    for macro, files in users.items():
        for name in files:
            assert f"{macro}(" in (FHIR / name).read_text(), name
    scope = inspect.getsource(incremental_scope)
    assert "rwe_fhir_adjudicated_claim_json(" in scope and "rwe_fhir_replaced_notes(" in scope
    assert "json_extract" not in scope and "'$." not in scope  # no path of its own into the JSON
    for name in ("cost/claim.sql", "cost/explanationofbenefit.sql", "note/documentreference.sql"):
        code = "\n".join(line.split("--")[0] for line in (FHIR / name).read_text().splitlines())
        assert "claim.reference" not in code and "relatesTo" not in code, name
