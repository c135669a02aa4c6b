"""Column schema and column lineage of the CDM tables, for the Dagster UI.

Schema: the OMOP specification the DDL is generated from, each column described by the OHDSI field
spec's user guidance and ETL conventions (OMOP_CDMv5.4_Field_Level.csv).

Lineage is derived from the SQL that writes each column, with sqlglot's column lineage
(``sqlglot.lineage``), not guessed from names. The build's SQL (lib/sql/cdm/*.sql) writes each CDM table
with ``INSERT INTO cdm.<table> [BY NAME] SELECT ...`` from intermediate tables that other statements
create (``CREATE TEMP TABLE mapped_event AS ...``, ``CREATE VIEW ...``). Each statement is parsed once,
its ``$parameters`` (constants: type concepts and the like) turned into literals, and every output column
traced through its CTEs, joins and expressions to the columns it is computed from. A column read from an
intermediate table is traced on through the statement that creates that table, until the trail ends at
an input of the build: a staging table (``stg_<entity>`` -> staging/<entity>), the linkage crosswalk, a
vocabulary table or another CDM table. ``UPDATE`` statements (drug_end_at_death.sql) add what they set.

What "derived from" means here is sqlglot's: the columns whose values flow into the column (selected,
computed, or tested in a CASE). Join keys and filters are not lineage: a concept id looked up by the
staged code comes from vocab/concept, with the code as the key of the lookup. Surrogate ids (the lake's
id maps, ``ids_<table>``) and constants have no upstream column. Rows written by Python code (the genomic
tests' PROCEDURE_OCCURRENCE and SPECIMEN rows, lib/genomics/cdm.py) are not in this lineage.

Deriving the lineage of all tables takes seconds (sqlglot qualifies and walks every statement: ~6 s on
one core, more on a loaded machine), so ``derived_lineage`` keeps it, in the process and in a JSON file
in the user's cache directory (``RWE_CACHE_DIR``, else ``$XDG_CACHE_HOME/rwe_assets`` or
``~/.cache/rwe_assets``) named by a hash of everything it is derived from: the SQL files, the staging
columns, this module and the sqlglot version. A change to any of them derives it afresh; an unwritable
cache only costs the time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import dagster as dg
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage

from rwe_assets.lib import sql_loader
from rwe_assets.lib.cdm import sql
from rwe_assets.lib.cdm_spec import FIELD_LEVEL_CSV, CdmTable, cdm_spec
from rwe_assets.lib.staging.model import BY_NAME
from rwe_assets.lib.vocabulary import VOCABULARY_TABLES

CROSSWALK = dg.AssetKey(["linkage", "person_crosswalk"])
_SQL_DIR = sql.SQL_DIR  # the build's SQL folder, read file by file (a test points it at a copy)
_DIALECT = "duckdb"
_ROWID = re.compile(r"\b(?:\w+\.)?rowid\b", re.I)

# Inputs the build registers from Python (lib/cdm/build.py), with their columns, so that sqlglot can
# expand `*` and resolve USING joins over them.
_CROSSWALK_COLUMNS = (
    "source_system", "source_person_id", "person_id", "match_method", "match_probability", "first_seen_batch",
)  # fmt: skip
_PYTHON_TABLES = {
    "crosswalk": _CROSSWALK_COLUMNS,
    "crosswalk_all": _CROSSWALK_COLUMNS,
    "unit_alias": ("source_code", "ucum_code", "temperature_only"),
    "us_state": ("code", "name"),
    "source_priority": ("source_system", "person_priority"),
    "source_kind": ("source_system", "kind"),
}
_ID_MAP_COLUMNS = ("natural_key", "id")
# The visit rollup's SQL is a template that lib/cdm/visits.py fills; these are the names build.py
# gives it (rollup_visits(con, "visit_input", "temp.main.rollup")). Numbers and VALUES are constants.
_ROLLUP_NAMES = {
    "staged_visits": "visit_input",
    "visit_table": "rollup_visit",
    "map_table": "rollup_visit_map",
    "output_table_kind": "TABLE",
    "class_map": "('class', 0, 'role')",
    **{f"work_{step}": f"rollup_work_{step}" for step in ("base", "stay", "dup", "assigned")},
    "inpatient_concept_id": "0",
    "er_inpatient_concept_id": "0",
}
# Sections of the era and observation-period SQL (lib/cdm/eras.py) that write a CDM table.
_ERA_SECTIONS = {
    "condition_era": ("insert",),
    "drug_era": ("insert",),
    "dose_era": ("insert",),
    "observation_period": ("insert_event_periods", "insert_enrollment_periods"),
}

# SQL files that write results tables only (no CDM column comes from them), run section by section
_RESULTS_ONLY = {"vocabulary_change"}

Leaf = tuple[str, str, str]  # (schema or "", table, column) of a build input
LINEAGE_GAPS: dict[str, str] = {}
"""Statement or table -> why sqlglot could not parse or trace it, from the last derive_lineage()."""


# --- schema and descriptions ------------------------------------------------------------------------


def column_schema(table: CdmTable) -> dg.TableSchema:
    descriptions = field_descriptions()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(f.name, f.duckdb_type, description=descriptions.get((table.name, f.name)))
            for f in table.fields
        ]
    )


@cache
def field_descriptions() -> dict[tuple[str, str], str]:
    """(table, field) -> the OHDSI field spec's userGuidance, then its etlConventions ("ETL: ...")."""
    with FIELD_LEVEL_CSV.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    described = {}
    for row in rows:
        parts = [_clean(row.get("userGuidance")), _clean(row.get("etlConventions"))]
        text = " ".join(p for p in (parts[0], f"ETL: {parts[1]}" if parts[1] else "") if p)
        if text:
            described[(row["cdmTableName"].lower(), row["cdmFieldName"].lower())] = text
    return described


def _clean(cell: str | None) -> str:
    text = " ".join((cell or "").split())
    return "" if text.upper() == "NA" else text


# --- lineage for Dagster ----------------------------------------------------------------------------


def column_lineage(table: CdmTable) -> dg.TableColumnLineage | None:
    """The table's column lineage as Dagster metadata (None when no SQL of the build writes it)."""
    columns = derived_lineage().get(table.name)
    if not columns:
        return None
    deps = {
        column: [dg.TableColumnDep(key, name) for key, name in sorted(_asset_columns(leaves), key=str)]
        for column, leaves in columns.items()
    }
    return dg.TableColumnLineage({column: d for column, d in deps.items() if d})


def _asset_columns(leaves: frozenset[Leaf]) -> set[tuple[dg.AssetKey, str]]:
    """Build inputs -> (asset key, column); inputs that are no asset (id maps, aliases) are left out."""
    found = set()
    for schema, table, column in leaves:
        key = _asset_key(schema, table)
        if key is not None:
            found.add((key, column))
    return found


def _asset_key(schema: str, table: str) -> dg.AssetKey | None:
    if table.startswith("stg_") and table[4:] in BY_NAME:
        return dg.AssetKey(["staging", table[4:]])
    if table in ("crosswalk", "crosswalk_all"):
        return CROSSWALK
    if schema == "cdm" and table in VOCABULARY_TABLES:
        return dg.AssetKey(["vocab", table])
    if schema == "cdm":
        return dg.AssetKey(["cdm", table])
    return None


# --- deriving it from the SQL -----------------------------------------------------------------------


@cache
def derived_lineage() -> dict[str, dict[str, frozenset[Leaf]]]:
    """CDM table -> column -> the build inputs (schema, table, column) its values come from; read from
    the cache file when one matches the SQL, else derived (``derive_lineage``) and written there."""
    path = _cache_dir() / f"cdm_column_lineage-{lineage_fingerprint()[:20]}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return {
            t: {c: frozenset(tuple(leaf) for leaf in ls) for c, ls in cols.items()}
            for t, cols in stored.items()
        }
    except (OSError, ValueError, TypeError):
        pass
    derived = derive_lineage()
    _write_cache(path, {t: {c: sorted(ls) for c, ls in cols.items()} for t, cols in derived.items()})
    return derived


def lineage_fingerprint() -> str:
    """sha256 over what the lineage is derived from: SQL texts, staging and CDM columns, this code, the
    SQL loader and the sqlglot version."""
    digest = hashlib.sha256(f"sqlglot {sqlglot.__version__}\n".encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(Path(sql.__file__).read_bytes())  # how the SQL is filled in
    digest.update(Path(sql_loader.__file__).read_bytes())
    for path in sorted(_SQL_DIR.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".sql"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps({n: t.column_names for n, t in sorted(BY_NAME.items())}).encode())
    digest.update(json.dumps(_cdm_columns(), sort_keys=True).encode())
    return digest.hexdigest()


def _cache_dir() -> Path:
    if os.environ.get("RWE_CACHE_DIR"):
        return Path(os.environ["RWE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rwe_assets"


def _write_cache(path: Path, data: dict) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(data, handle)
        os.replace(handle.name, path)
    except OSError:
        pass


def derive_lineage() -> dict[str, dict[str, frozenset[Leaf]]]:
    """The lineage derived from the SQL now, without the cache. A statement sqlglot cannot parse or
    trace leaves its table's columns without lineage (the build must not fail for metadata); it is
    recorded in LINEAGE_GAPS, which the tests require to be empty."""
    LINEAGE_GAPS.clear()
    graph = _Graph(list(_statements()))
    tables: dict[str, dict[str, set[Leaf]]] = defaultdict(lambda: defaultdict(set))
    for target, query, names in graph.writes:
        for column, leaves in _traced(graph, target, query, names).items():
            tables[target][column] |= leaves
    for target, query, column in graph.updates:
        for leaves in _traced(graph, target, query).values():
            # the updated table read by its own UPDATE stands for what its INSERT wrote
            own = {leaf for leaf in leaves if leaf[:2] == ("cdm", target)}
            tables[target][column] |= (leaves - own).union(*(tables[target].get(c, set()) for *_, c in own))
    return {t: {c: frozenset(leaves) for c, leaves in cols.items()} for t, cols in tables.items()}


def _traced(graph: _Graph, target: str, query: exp.Query, names: list[str] | None = None) -> dict:
    try:
        return graph.trace(query, names)
    except SqlglotError as error:
        LINEAGE_GAPS[f"cdm.{target}"] = f"{type(error).__name__}: {error}"[:500]
        return {}


class _Graph:
    """The build's statements: which intermediate table each CREATE makes, which CDM table each INSERT
    or UPDATE writes; traces a query's columns back to build inputs, intermediates expanded."""

    def __init__(self, statements: list[exp.Expr]) -> None:
        self.creates: dict[str, exp.Query] = {}
        self.writes: list[tuple[str, exp.Query, list[str] | None]] = []
        self.updates: list[tuple[str, exp.Query, str]] = []
        for statement in statements:
            self._add(statement)
        self._traced: dict[str, dict[str, frozenset[Leaf]]] = {}

    def _add(self, statement: exp.Expr) -> None:
        if isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
            self.creates[statement.this.name] = statement.expression
        elif isinstance(statement, exp.Insert) and isinstance(statement.expression, exp.Query):
            target = statement.this
            names = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
            table = target.this if isinstance(target, exp.Schema) else target
            if table.db == "cdm":  # a CDM table; other INSERTs fill scratch tables
                self.writes.append((table.name, statement.expression, names))
        elif isinstance(statement, exp.Update):
            self.updates.extend(_update_queries(statement))

    def trace(self, query: exp.Query, names: list[str] | None = None) -> dict[str, frozenset[Leaf]]:
        """Output column -> build inputs. `names`: the INSERT's column list (matched by position)."""
        nodes = lineage(None, query, schema=self._schema(query), dialect=_DIALECT, db="main")
        traced = {}
        for position, (column, node) in enumerate(nodes.items()):
            out = names[position] if names and position < len(names) else column
            traced[out] = frozenset(leaf for source in _sources(node) for leaf in self._expand(source))
        return traced

    def _expand(self, leaf: Leaf) -> Iterator[Leaf]:
        schema, table, column = leaf
        if schema != "cdm" and table in self.creates:
            yield from self._intermediate(table).get(column, frozenset())
        else:
            yield leaf

    def _intermediate(self, name: str) -> dict[str, frozenset[Leaf]]:
        if name not in self._traced:
            self._traced[name] = {}  # a statement that reads itself stops here
            self._traced[name] = self.trace(self.creates[name])
        return self._traced[name]

    def _schema(self, query: exp.Query) -> dict[str, dict[str, dict[str, str]]]:
        """Columns of every table the query reads (inputs and intermediates), for sqlglot."""
        schema: dict[str, dict[str, dict[str, str]]] = {"cdm": _cdm_columns(), "main": {}}
        for table in query.find_all(exp.Table):
            name = table.name
            columns: tuple[str, ...] | list[str] = ()
            if name in self.creates:
                columns = list(self._intermediate(name))
            elif name.startswith("stg_") and name[4:] in BY_NAME:
                columns = BY_NAME[name[4:]].column_names
            elif name.startswith("ids_"):
                columns = _ID_MAP_COLUMNS
            else:
                columns = _PYTHON_TABLES.get(name, ())
            if columns and table.db != "cdm":
                schema.setdefault(table.db or "main", {})[name] = {c: "VARCHAR" for c in columns}
        return {db: tables for db, tables in schema.items() if tables}


def _sources(node: Node) -> Iterator[Leaf]:
    """The leaves of a lineage node that are table columns (constants have none)."""
    for n in node.walk():
        if not n.downstream and isinstance(n.source, exp.Table):
            yield (n.source.db.lower(), n.source.name.lower(), n.name.split(".")[-1].lower())


def _update_queries(update: exp.Update) -> Iterator[tuple[str, exp.Query, str]]:
    """UPDATE t SET c = expr FROM f -> (t, SELECT expr AS c FROM f, t, c) per assignment."""
    target = update.this.sql(_DIALECT)
    tables = (
        f"{update.args['from_'].sql(_DIALECT)}, {target}" if update.args.get("from_") else f"FROM {target}"
    )
    for assignment in update.expressions:
        column = assignment.this.name
        query = f"SELECT {assignment.expression.sql(_DIALECT)} AS {column} {tables}"
        yield update.this.name, sqlglot.parse_one(query, dialect=_DIALECT), column


@cache
def _cdm_columns() -> dict[str, dict[str, str]]:
    return {t.name: {f.name: f.duckdb_type for f in t.fields} for t in cdm_spec().tables}


def _statements() -> Iterator[exp.Expr]:
    """Every statement of the build's SQL, parsed: the files run statement by statement (build.run_sql),
    the visit rollup's template filled with the names the build uses, the era sections rendered."""
    for path in sorted(_SQL_DIR.iterdir(), key=lambda p: p.name):
        name = path.name.removesuffix(".sql")
        if not path.name.endswith(".sql") or name in _ERA_SECTIONS or name in _RESULTS_ONLY:
            continue
        fill = {key: sql.Fragment(value) for key, value in _ROLLUP_NAMES.items()}
        text = sql.fill_text(path.read_text(encoding="utf-8"), fill, path.name)
        for number, statement in enumerate(sql.statements(text), 1):
            yield from _parse(statement, f"{path.name} statement {number}")
    for name, sections in _ERA_SECTIONS.items():
        for section in sections:
            # the enrollment table is cdm.payer_plan_period (build.py); render quotes one name
            rendered = sql.render(name, section, {"schema": "cdm", "enrollment": "enrollment"})
            yield from _parse(
                rendered.replace('"enrollment"', '"cdm"."payer_plan_period"'), f"{name}.sql {section}"
            )


def _parse(statement: str, where: str) -> Iterator[exp.Expr]:
    body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
    if not body:
        return
    # DuckDB's INSERT ... BY NAME matches columns by name, which is what the lineage does anyway;
    # $parameters are constants, so literals
    body = re.sub(r"\bBY\s+NAME\b", "", body, flags=re.I)
    body = sql_loader.PARAMETER.sub(lambda m: f"'${m.group(1)}'", body)
    body = _ROWID.sub("NULL", body)  # DuckDB's row number pseudo-column: a position, no lineage
    try:
        parsed = sqlglot.parse_one(body, dialect=_DIALECT)
    except SqlglotError as error:
        LINEAGE_GAPS[where] = f"{type(error).__name__}: {error}"[:500]
        return
    if isinstance(parsed, exp.Create | exp.Insert | exp.Update):
        yield parsed


def lineage_of(table: str, column: str) -> Mapping[str, set[str]]:
    """Asset ("layer/name") -> columns one CDM column comes from (for tests and the docs)."""
    out: dict[str, set[str]] = defaultdict(set)
    for key, name in _asset_columns(derived_lineage().get(table, {}).get(column, frozenset())):
        out[key.to_user_string()].add(name)
    return dict(out)
