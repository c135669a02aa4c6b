"""The text of a staging profile's SQL as lib/staging/build.py runs it: its macros, and the SQL of each
``<profile>/<table>/<entity>.sql``, as written or generated from a template.

Macros: ``staging/_macros.sql`` (shared by every profile) first, then the profile's ``_macros.sql``.

Templates: a table folder may hold ``_<name>_template.sql`` and ``_<name>s.yaml``, one entry per
raw entity; the row fills the template's ``{placeholders}`` (the style of lib/sql_loader.py, see
lib/sql/README.md). The entity's own ``<entity>.sql`` is then a stub of comments saying so: it keeps
the entity listed where the profile's files are listed, and its text is the filled template. FHIR R4
events are built so (fhir_r4/event/_event_template.sql, _events.yaml): one skeleton, a table of
resource paths.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_loader import Fragment, fill_text
from rwe_assets.lib.sql_text import quote_literal

STAGING_SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "staging"
MACROS_FILE = "_macros.sql"  # a profile's own macros, and the shared ones beside the profiles
SHARED_MACROS = STAGING_SQL_DIR / MACROS_FILE


def profile_macros(profile_dir: Path) -> str:
    """The macros a profile's SQL may call: the shared ones, then the profile's own."""
    own = profile_dir / MACROS_FILE
    return "\n".join(p.read_text(encoding="utf-8") for p in (SHARED_MACROS, own) if p.exists())


def profile_sql_text(sql_file: Path) -> str:
    """The SQL of `sql_file`: its text, or, for a stub of a template row, the filled template."""
    generated = _generated(sql_file.parent)
    if sql_file.stem not in generated:
        return sql_file.read_text(encoding="utf-8")
    if not _only_comments(sql_file.read_text(encoding="utf-8")):
        raise ConfigError(f"{sql_file}: expected a stub of comments (a template row stages it), found SQL")
    return generated[sql_file.stem]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("--") for line in text.splitlines())


def _generated(folder: Path) -> dict[str, str]:
    """entity -> SQL for every template row in `folder`."""
    generated = {}
    for template in sorted(folder.glob("_*_template.sql")):
        generated |= render_rows(template, folder / f"{template.name.removesuffix('_template.sql')}s.yaml")
    return generated


@functools.cache
def render_rows(template: Path, rows: Path) -> dict[str, str]:
    """entity -> the template filled from its row of `rows`, the row's rule as the leading comment."""
    skeleton = template.read_text(encoding="utf-8")
    body = skeleton[skeleton.index("WITH ") :]  # the template's own comment is about the template
    with rows.open(encoding="utf-8") as handle:
        table = yaml.safe_load(handle)
    rendered = {}
    for entity, row in table.items():
        rule = "\n".join(f"-- {line}".rstrip() for line in row.get("rule", "").strip().splitlines())
        rendered[entity] = f"{rule}\n{fill_text(body, _event_fill(entity, row), f'{rows.name} [{entity}]')}"
    return rendered


def _event_fill(entity: str, row: dict) -> dict[str, Fragment]:
    """The placeholders of _event_template.sql from one row of _events.yaml."""
    try:
        end = row.get("end")
        fill = {
            "schema": _schema(entity, row["schema"]),
            "raw_view": f"raw_{entity}",
            "codings": row["codings"],
            "join": row.get("join", ""),
            "person": row["person"],
            "visit_ref": f"rwe_fhir_ref(r.{row['visit']}.reference)" if row.get("visit") else "NULL",
            "provider_ref": row.get("provider", "NULL"),
            "start_text": row["start"],
            "end_text": end or "NULL",
            "end_datetime": "rwe_ts_end(start_text, end_text)" if end else "NULL",
            "record_key": quote_literal(row["resource"] + "/"),
            "entity": quote_literal(entity),
            "event_kind": quote_literal(row["event_kind"]),
            "code_description": row["code_description"],
            "value_as_string": row.get("value_as_string", "NULL"),
            "quantity": row.get("quantity", "NULL"),
            "days_supply": row.get("days_supply", "NULL"),
            "extra_columns": _columns(row.get("extra_columns"), "\n    ", ","),
            "picked_columns": _columns(row.get("picked_columns"), ",\n        "),
            **_measured(row.get("measured_columns")),
            "status_checks": "".join(f"\n        {check}," for check in row.get("status_checks", [])),
            "status_field": quote_literal(row["status_field"]),
            "status_codes": row["status_codes"],
            "withdrawn": f", {row['withdrawn']}" if row.get("withdrawn") else "",
            "person_field": quote_literal(row["person"]),
            "code_field": quote_literal(row["code_field"]),
            "start_field": quote_literal(row["start_field"]),
            "end_check": f", {quote_literal(row['end_field'])}, end_text" if end else "",
            "row_checks": f",\n        {row['row_checks']}" if row.get("row_checks") else "",
        }
    except KeyError as missing:
        raise ConfigError(f"_events.yaml [{entity}]: expected a value for {missing}, found none") from None
    return {key: Fragment(value) for key, value in fill.items()}


# What every templated resource's from_json schema reads besides its row's own elements: meta.lastUpdated,
# which the template stages as _version_at (rwe_fhir_version_at, fhir_r4/_macros.sql).
TEMPLATE_SCHEMA = {"meta": {"lastUpdated": "VARCHAR"}}


def _schema(entity: str, text: str) -> str:
    """The row's from_json schema (a JSON object) with TEMPLATE_SCHEMA's members, as one JSON object."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"_events.yaml [{entity}]: expected schema to be JSON, found {error.msg}") from None
    if not isinstance(schema, dict) or schema.keys() & TEMPLATE_SCHEMA.keys():
        raise ConfigError(
            f"_events.yaml [{entity}]: expected schema to be a JSON object without {sorted(TEMPLATE_SCHEMA)} "
            "(the template reads those itself)"
        )
    return json.dumps(TEMPLATE_SCHEMA | schema)


def _columns(columns: dict | None, before: str, after: str = "") -> str:
    """Named column expressions (a row's ``name: expression`` map) as ``<expression> AS <name>``."""
    return "".join(f"{before}{sql} AS {name}{after}" for name, sql in (columns or {}).items())


def _measured(columns: dict | None) -> dict[str, str]:
    """A ``measured`` step after ``picked`` when the row has measured_columns (columns computed from
    picked's, e.g. days from a duration picked first), and the step the final SELECT reads."""
    if not columns:
        return {"measured": "", "last_step": "picked"}
    select = _columns(columns, ",\n        ")
    return {
        "measured": f",\nmeasured AS (\n    SELECT *{select}\n    FROM picked\n)",
        "last_step": "measured",
    }
