"""Compare two OMOP CDM DuckDB files: do they hold the same facts, whatever surrogate ids each build gave?

Used to show, for example, that a CDM built incrementally after corrections equals one built from the
corrected extract alone. Their person_id, visit_occurrence_id, provider_id, ... may differ; the facts
they record may not.

Method: every row becomes a content hash in which ids are replaced by what they point to, and the two
multisets of hashes are compared per table.

- Which columns are ids comes from the CDM spec (OMOP v5.4 plus the project's G-CDM tables). A table's
  own primary key is left out. A foreign key to a table with a surrogate primary key (person,
  visit_occurrence, provider, care_site, location, specimen, ...) is replaced by the hash of the row it
  points to. Concept ids and other vocabulary keys stay values: they are stable across builds. Three
  references the spec does not declare are added (UNDECLARED_REFERENCES).
- First pass, in topological order of those references (location -> care_site -> provider -> person ->
  visit_occurrence -> visit_detail -> events): per row, md5 of its columns as JSON (so NULL equals NULL
  and differs from every value), with references replaced by the referenced row's first-pass hash. Each
  table keeps id -> hash for the tables that point to it.
- Second pass, for the references the first pass cannot order: self references
  (visit_occurrence.preceding_visit_occurrence_id, visit_detail.parent_visit_detail_id, ...) and
  polymorphic ones, whose table is named by another column (cost.cost_event_id by cost_domain_id;
  observation, measurement, note and episode_event event ids by a CDM Field concept;
  fact_relationship by domain concepts). The row's hash becomes md5(first-pass hash, referenced rows'
  first-pass hashes). Everything refers to first-pass hashes, so there are no cycles to break.
- A reference that resolves to no row (dangling, its table absent, its id not unique there, a field or
  domain concept the file's vocabulary does not name) keeps its raw id, marked as unresolved: this can
  make two builds differ, never look the same.
- Per table, count each hash on each side; a hash with n more copies on one side is n rows only on
  that side. Those rows are read back by rowid with their original values, ids included.
- A change propagates: a row whose referenced row changed is itself a different fact (a condition of a
  visit whose date changed). Second-pass references do not propagate further (a visit's preceding
  visit changing changes that visit's row only).
- Tables the spec does not know are compared on all their columns as values, ids included.

All of it runs as DuckDB SQL on temp tables of one in-memory connection that ATTACHes both files
READ_ONLY; nothing is written to them.
"""

from __future__ import annotations

import graphlib
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm_spec import CDM_SCHEMA, CdmSpec, CdmTable
from rwe_assets.lib.genomics.cdm import gcdm_spec
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

SIDES = ("a", "b")
# Left out by default: it records build time and input file hashes, which differ per build by design.
BUILD_METADATA_TABLES = ("cdm_source",)
# Id columns the spec does not declare as foreign keys: (table, column) -> table referred to.
UNDECLARED_REFERENCES = {
    ("note_nlp", "note_id"): "note",
    ("cost", "payer_plan_period_id"): "payer_plan_period",
    ("episode", "episode_parent_id"): "episode",
}
# domain_id -> the table holding that domain's rows (cost.cost_domain_id, fact_relationship's domains).
DOMAIN_TABLES = {
    "Visit": "visit_occurrence",
    "Condition": "condition_occurrence",
    "Drug": "drug_exposure",
    "Procedure": "procedure_occurrence",
    "Device": "device_exposure",
    "Measurement": "measurement",
    "Observation": "observation",
    "Specimen": "specimen",
    "Note": "note",
    "Episode": "episode",
}

TargetKind = Literal["domain_id", "domain_concept", "field_concept"]


@dataclass(frozen=True)
class PolymorphicReference:
    """An id column whose table is named by another column of the same row."""

    column: str
    discriminator: str
    kind: TargetKind  # the discriminator holds a domain_id, a domain's concept id or a CDM Field concept id


POLYMORPHIC_REFERENCES: dict[str, tuple[PolymorphicReference, ...]] = {
    "cost": (PolymorphicReference("cost_event_id", "cost_domain_id", "domain_id"),),
    "observation": (
        PolymorphicReference("observation_event_id", "obs_event_field_concept_id", "field_concept"),
    ),
    "measurement": (
        PolymorphicReference("measurement_event_id", "meas_event_field_concept_id", "field_concept"),
    ),
    "note": (PolymorphicReference("note_event_id", "note_event_field_concept_id", "field_concept"),),
    "episode_event": (PolymorphicReference("event_id", "episode_event_field_concept_id", "field_concept"),),
    "fact_relationship": (
        PolymorphicReference("fact_id_1", "domain_concept_id_1", "domain_concept"),
        PolymorphicReference("fact_id_2", "domain_concept_id_2", "domain_concept"),
    ),
}
NOT_IN_SPEC_NOTE = "not in the CDM spec: all columns compared as values, ids included"


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableComparison:
    """One table on both sides. Rows are counted with their copies: a row held twice in A and once in B
    is one row only in A."""

    table: str
    rows_a: int | None  # None: the table is absent from A
    rows_b: int | None
    only_in_a: int
    only_in_b: int
    sample_a: tuple[dict[str, Any], ...]  # up to `limit` of the rows only in A, original values
    sample_b: tuple[dict[str, Any], ...]
    columns_only_in_a: tuple[str, ...] = ()
    columns_only_in_b: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return (
            self.rows_a is not None
            and self.rows_b is not None
            and self.only_in_a == self.only_in_b == 0
            and not self.columns_only_in_a
            and not self.columns_only_in_b
        )


@dataclass(frozen=True)
class CdmComparison:
    path_a: Path
    path_b: Path
    tables: tuple[TableComparison, ...]

    @property
    def same(self) -> bool:
        return all(t.same for t in self.tables)

    @property
    def differing(self) -> tuple[TableComparison, ...]:
        return tuple(t for t in self.tables if not t.same)

    def table(self, name: str) -> TableComparison:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(f"comparison: no table {name!r}")


# --- how a table is hashed ----------------------------------------------------------------------


@dataclass(frozen=True)
class _TablePlan:
    """The role of each compared column of one table."""

    name: str
    in_spec: bool
    primary_key: str | None  # left out of the hash; the id other tables refer to
    values: tuple[str, ...]
    references: tuple[tuple[str, str], ...]  # (column, table referred to), resolved in the first pass
    self_references: tuple[str, ...]  # resolved in the second pass
    polymorphic: tuple[PolymorphicReference, ...]  # resolved in the second pass

    @property
    def has_second_pass(self) -> bool:
        return bool(self.self_references or self.polymorphic)


def _plan(name: str, columns: Sequence[str], spec: CdmSpec) -> _TablePlan:
    table = next((t for t in spec.tables if t.name == name), None)
    if table is None:
        return _TablePlan(name, False, None, tuple(columns), (), (), ())
    surrogate_keyed = _surrogate_keyed_tables(spec)
    key = table.primary_key[0] if name in surrogate_keyed and table.primary_key[0] in columns else None
    polymorphic = tuple(
        p for p in POLYMORPHIC_REFERENCES.get(name, ()) if p.column in columns and p.discriminator in columns
    )
    skipped = {key, *(p.column for p in polymorphic)}
    values, references, self_references = [], [], []
    for column in (c for c in columns if c not in skipped):
        target = _referenced_table(table, column)
        if target not in surrogate_keyed:
            values.append(column)
        elif target == name:
            self_references.append(column)
        else:
            references.append((column, target))
    return _TablePlan(name, True, key, tuple(values), tuple(references), tuple(self_references), polymorphic)


def _surrogate_keyed_tables(spec: CdmSpec) -> set[str]:
    """Tables whose single-column primary key is a surrogate id: every one but the vocabulary's."""
    return {t.name for t in spec.tables if not t.is_vocabulary and len(t.primary_key) == 1}


def _referenced_table(table: CdmTable, column: str) -> str | None:
    if (table.name, column) in UNDECLARED_REFERENCES:
        return UNDECLARED_REFERENCES[(table.name, column)]
    field = next((f for f in table.fields if f.name == column), None)
    return field.fk_table if field else None


def _hash_order(chosen: Iterable[str], plans: Mapping[str, _TablePlan]) -> list[str]:
    """The chosen tables and every table they refer to, referred-to tables first."""
    needed: set[str] = set()
    todo = [name for name in chosen if name in plans]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [target for _, target in plans[name].references if target in plans]
        if plans[name].polymorphic:  # may point into any table with an id
            todo += [other for other, plan in plans.items() if plan.primary_key]
    graph = {name: {t for _, t in plans[name].references if t in needed} for name in sorted(needed)}
    return list(graphlib.TopologicalSorter(graph).static_order())


# --- the public entry points --------------------------------------------------------------------


def compare_cdms(
    path_a: Path, path_b: Path, tables: Sequence[str] | None = None, limit: int = 20
) -> CdmComparison:
    """Compare the `cdm` schema of two DuckDB files, both opened read-only. `tables` defaults to every
    table of either file but the vocabulary's and cdm_source; `limit` caps the sample rows per side."""
    paths = dict(zip(SIDES, (Path(path_a), Path(path_b)), strict=True))
    for path in paths.values():
        if not path.is_file():
            raise ConfigError(f"expected a DuckDB file, found nothing at {path}")
    if limit < 0:
        raise ConfigError(f"expected a limit >= 0, found {limit}")
    spec = gcdm_spec()
    with (
        tempfile.TemporaryDirectory(prefix="rwe-compare-") as spill,
        duckdb.connect(config={"temp_directory": spill}) as con,
    ):
        con.execute("SET enable_progress_bar = false")
        for side, path in paths.items():
            con.execute(f"ATTACH {quote_literal(str(path))} AS {_catalog(side)} (READ_ONLY)")
        columns = {side: _columns_by_table(con, side, path) for side, path in paths.items()}
        chosen = _chosen_tables(tables, columns, spec)
        plans = {name: _plan(name, _compared_columns(name, columns), spec) for name in _present(columns)}
        order = _hash_order(chosen, plans)
        for side in SIDES:
            _hash_side(con, side, [plans[name] for name in order if name in columns[side]], columns[side])
        results = tuple(_compare_table(con, plans[name], columns, limit) for name in chosen)
    return CdmComparison(paths["a"], paths["b"], results)


def format_comparison(comparison: CdmComparison) -> str:
    """One summary line per table, then each differing table's rows (up to the limit per side)."""
    lines = [f"A: {comparison.path_a}", f"B: {comparison.path_b}", ""]
    lines.append(f"{'table':<28}{'rows A':>10}{'rows B':>10}{'only A':>10}{'only B':>10}")
    lines += [_summary_line(t) for t in comparison.tables]
    for table in comparison.tables:
        lines += _details(table)
    lines += ["", _verdict(comparison)]
    return "\n".join(lines)


# --- reading the two files ----------------------------------------------------------------------


def _catalog(side: str) -> str:
    return f"cdm_{side}"


def _source(side: str, table: str) -> str:
    return f"{_catalog(side)}.{CDM_SCHEMA}.{quote_identifier(table)}"


def _columns_by_table(con: duckdb.DuckDBPyConnection, side: str, path: Path) -> dict[str, tuple[str, ...]]:
    """Base tables of the side's cdm schema (views have no rowid to read rows back by) -> columns."""
    rows = con.execute(
        """
        SELECT c.table_name, list(c.column_name ORDER BY c.column_index)
        FROM duckdb_columns() c
        SEMI JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        WHERE c.database_name = ? AND c.schema_name = ?
        GROUP BY c.table_name
        """,
        [_catalog(side), CDM_SCHEMA],
    ).fetchall()
    if not rows:
        raise ConfigError(f"expected tables in schema {CDM_SCHEMA} of {path}, found none")
    return {table: tuple(names) for table, names in rows}


def _present(columns: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(set().union(*(columns[side] for side in SIDES)))


def _compared_columns(table: str, columns: Mapping[str, Mapping[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """The columns both sides hold (A's order); those of the one side holding the table."""
    a, b = columns["a"].get(table), columns["b"].get(table)
    if a is None or b is None:
        return a or b or ()
    return tuple(c for c in a if c in b)


def _chosen_tables(
    tables: Sequence[str] | None, columns: Mapping[str, Mapping[str, Any]], spec: CdmSpec
) -> list[str]:
    present = _present(columns)
    if tables is not None:
        if missing := [t for t in tables if t not in present]:
            raise ConfigError(
                f"expected tables of schema {CDM_SCHEMA} in A or B, found {', '.join(missing)} in neither"
            )
        return list(dict.fromkeys(tables))
    excluded = {t.name for t in spec.tables if t.is_vocabulary} | set(BUILD_METADATA_TABLES)
    spec_order = [t.name for t in spec.tables if t.name in present]
    return [t for t in spec_order + sorted(set(present) - set(spec_order)) if t not in excluded]


# --- hashing one side ---------------------------------------------------------------------------


def _rows(side: str, table: str) -> str:
    """Temp table: rid (rowid), id (primary key), hb (first-pass hash), second-pass raw columns."""
    return quote_identifier(f"cmp_{side}_{table}")


def _ids(side: str, table: str) -> str:
    """Temp table: id -> hb for the ids held once (a duplicated id resolves to nothing)."""
    return quote_identifier(f"cmp_{side}_{table}_ids")


def _hashes(side: str, table: str) -> str:
    """Temp table or view: rid, h (the hash compared)."""
    return quote_identifier(f"cmp_{side}_{table}_hashes")


def _targets(side: str) -> str:
    """Temp table: (kind, key) -> target table, from which polymorphic references learn their table."""
    return quote_identifier(f"cmp_{side}__targets")


def _events(side: str) -> str:
    """Temp view: (target table, id) -> hb over every table with an id."""
    return quote_identifier(f"cmp_{side}__events")


def _row_hash(fields: Sequence[str]) -> str:
    return f"md5_number(to_json(struct_pack({', '.join(fields) or '_empty := NULL'})))"


def _resolved(hash_sql: str | None, raw_sql: str) -> str:
    """The referenced row's hash; the raw id, marked, when it resolves to no row; NULL for NULL.
    Hashes enter JSON as hex(): DuckDB turns a UHUGEINT into decimal text ~1000x slower."""
    unresolved = f"'unresolved id ' || {raw_sql}"
    return unresolved if hash_sql is None else f"coalesce(hex({hash_sql}), {unresolved})"


def _hash_side(
    con: duckdb.DuckDBPyConnection,
    side: str,
    plans: Sequence[_TablePlan],
    columns: Mapping[str, tuple[str, ...]],
) -> None:
    """The temp tables of one side; `plans` in hash order, only tables the side holds."""
    mapped: set[str] = set()  # tables with an id -> hash map on this side
    for plan in plans:
        _first_pass(con, side, plan, mapped)
        if plan.primary_key:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_ids(side, plan.name)} AS SELECT id, any_value(hb) AS hb "
                f"FROM {_rows(side, plan.name)} WHERE id IS NOT NULL GROUP BY id HAVING count(*) = 1"
            )
            mapped.add(plan.name)
    if any(plan.polymorphic for plan in plans):
        _polymorphic_targets(con, side, mapped, columns)
    for plan in plans:
        _second_pass(con, side, plan, mapped)


def _first_pass(con: duckdb.DuckDBPyConnection, side: str, plan: _TablePlan, mapped: set[str]) -> None:
    """Per row: rid, id, hb (values and first-pass references) and the raw second-pass columns."""
    fields = [f"{quote_identifier(c)} := src.{quote_identifier(c)}" for c in plan.values]
    joins = []
    for n, (column, target) in enumerate(plan.references):
        raw, hash_sql = f"src.{quote_identifier(column)}", None
        if target in mapped:
            joins.append(f"LEFT JOIN {_ids(side, target)} ref{n} ON ref{n}.id = {raw}")
            hash_sql = f"ref{n}.hb"
        fields.append(f"{quote_identifier(column)} := {_resolved(hash_sql, raw)}")
    carried = [*plan.self_references, *(c for p in plan.polymorphic for c in (p.column, p.discriminator))]
    key = f"src.{quote_identifier(plan.primary_key)}" if plan.primary_key else "NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_rows(side, plan.name)} AS
        SELECT src.rowid AS rid, {key} AS id, {_row_hash(fields)} AS hb
               {"".join(f", src.{quote_identifier(c)}" for c in carried)}
        FROM {_source(side, plan.name)} src
        {" ".join(joins)}
        """
    )


def _polymorphic_targets(
    con: duckdb.DuckDBPyConnection, side: str, mapped: set[str], columns: Mapping[str, tuple[str, ...]]
) -> None:
    """Which table a polymorphic reference points into: domain ids from DOMAIN_TABLES, domain concepts
    through the side's domain table, CDM Field concepts ('condition_occurrence.condition_occurrence_id')
    from the side's concept table."""
    targets = _targets(side)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {targets} (kind VARCHAR, key VARCHAR, target VARCHAR)")
    con.executemany(f"INSERT INTO {targets} VALUES ('domain_id', ?, ?)", list(DOMAIN_TABLES.items()))
    if "domain" in columns:
        con.execute(
            f"""
            INSERT INTO {targets}
            SELECT 'domain_concept', d.domain_concept_id::VARCHAR, t.target
            FROM {_source(side, "domain")} d JOIN {targets} t ON t.kind = 'domain_id' AND t.key = d.domain_id
            """
        )
    if "concept" in columns:
        con.execute(
            f"""
            INSERT INTO {targets}
            SELECT 'field_concept', concept_id::VARCHAR, lower(split_part(concept_name, '.', 1))
            FROM {_source(side, "concept")}
            WHERE concept_class_id = 'Field' AND concept_name LIKE '%_._%'
            """
        )
    # a key naming two tables (duplicated vocabulary rows) resolves to nothing, as a duplicated id does
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {targets} AS SELECT kind, key, any_value(target) AS target "
        f"FROM {targets} GROUP BY kind, key HAVING count(DISTINCT target) = 1"
    )
    unions = [
        f"SELECT {quote_literal(name)} AS target, id::BIGINT AS id, hb FROM {_ids(side, name)}"
        for name in sorted(mapped)
    ]
    empty = "SELECT NULL::VARCHAR AS target, NULL::BIGINT AS id, NULL::UHUGEINT AS hb WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_events(side)} AS {' UNION ALL '.join([empty, *unions])}")


def _second_pass(con: duckdb.DuckDBPyConnection, side: str, plan: _TablePlan, mapped: set[str]) -> None:
    """Per row: rid, h. h = md5(first-pass hash, self and polymorphic references), or the first-pass hash."""
    rows, hashes = _rows(side, plan.name), _hashes(side, plan.name)
    if not plan.has_second_pass:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {hashes} AS SELECT rid, hb AS h FROM {rows}")
        return
    fields, joins = ["_first_pass := hex(r.hb)"], []
    for n, column in enumerate(plan.self_references):
        raw, hash_sql = f"r.{quote_identifier(column)}", None
        if plan.name in mapped:
            joins.append(f"LEFT JOIN {_ids(side, plan.name)} self{n} ON self{n}.id = {raw}")
            hash_sql = f"self{n}.hb"
        fields.append(f"{quote_identifier(column)} := {_resolved(hash_sql, raw)}")
    for n, ref in enumerate(plan.polymorphic):
        raw, kind = f"r.{quote_identifier(ref.column)}", quote_literal(ref.kind)
        joins += [
            f"LEFT JOIN {_targets(side)} tg{n} "
            f"ON tg{n}.kind = {kind} AND tg{n}.key = r.{quote_identifier(ref.discriminator)}::VARCHAR",
            f"LEFT JOIN {_events(side)} ev{n} ON ev{n}.target = tg{n}.target AND ev{n}.id = {raw}",
        ]
        fields.append(f"{quote_identifier(ref.column)} := {_resolved(f'ev{n}.hb', raw)}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {hashes} AS "
        f"SELECT r.rid, {_row_hash(fields)} AS h FROM {rows} r {' '.join(joins)}"
    )


# --- comparing one table ------------------------------------------------------------------------

_NO_ROWS = "(SELECT NULL::BIGINT AS rid, NULL::UHUGEINT AS h WHERE false)"


def _compare_table(
    con: duckdb.DuckDBPyConnection,
    plan: _TablePlan,
    columns: Mapping[str, Mapping[str, tuple[str, ...]]],
    limit: int,
) -> TableComparison:
    present = {side: plan.name in columns[side] for side in SIDES}
    relation = {side: _hashes(side, plan.name) if present[side] else _NO_ROWS for side in SIDES}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE cmp_diff AS
        WITH a AS (SELECT h, count(*) AS n FROM {relation["a"]} GROUP BY h),
             b AS (SELECT h, count(*) AS n FROM {relation["b"]} GROUP BY h)
        SELECT h, coalesce(a.n, 0) AS n_a, coalesce(b.n, 0) AS n_b
        FROM a FULL OUTER JOIN b USING (h)
        WHERE coalesce(a.n, 0) <> coalesce(b.n, 0)
        """
    )
    only_a, only_b = con.execute(
        "SELECT coalesce(sum(greatest(n_a - n_b, 0)), 0), coalesce(sum(greatest(n_b - n_a, 0)), 0) FROM cmp_diff"
    ).fetchone()
    rows = {
        side: con.execute(f"SELECT count(*) FROM {relation[side]}").fetchone()[0] if present[side] else None
        for side in SIDES
    }
    samples = {side: _sample(con, side, plan.name, limit) if present[side] else () for side in SIDES}
    a_columns, b_columns = (columns[side].get(plan.name) for side in SIDES)
    return TableComparison(
        table=plan.name,
        rows_a=rows["a"],
        rows_b=rows["b"],
        only_in_a=int(only_a),
        only_in_b=int(only_b),
        sample_a=samples["a"],
        sample_b=samples["b"],
        columns_only_in_a=tuple(c for c in a_columns or () if b_columns and c not in b_columns),
        columns_only_in_b=tuple(c for c in b_columns or () if a_columns and c not in a_columns),
        notes=() if plan.in_spec else (NOT_IN_SPEC_NOTE,),
    )


def _sample(con: duckdb.DuckDBPyConnection, side: str, table: str, limit: int) -> tuple[dict[str, Any], ...]:
    """Up to `limit` rows of this side without a match on the other, as stored (ids included)."""
    mine, other = ("n_a", "n_b") if side == "a" else ("n_b", "n_a")
    rids = con.execute(
        f"""
        SELECT rid FROM (
            SELECT r.rid, d.{mine} - d.{other} AS extra,
                   row_number() OVER (PARTITION BY r.h ORDER BY r.rid) AS copy
            FROM {_hashes(side, table)} r JOIN cmp_diff d USING (h)
        ) WHERE copy <= extra ORDER BY rid LIMIT ?
        """,
        [limit],
    ).fetchall()
    if not rids:
        return ()
    cursor = con.execute(
        f"SELECT * FROM {_source(side, table)} WHERE rowid IN (SELECT unnest(?::BIGINT[])) ORDER BY rowid",
        [[rid for (rid,) in rids]],
    )
    names = [d[0] for d in cursor.description]
    return tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())


# --- the report ---------------------------------------------------------------------------------


def _rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _count(rows: int | None) -> str:
    return "absent" if rows is None else str(rows)


def _summary_line(table: TableComparison) -> str:
    return (
        f"{table.table:<28}{_count(table.rows_a):>10}{_count(table.rows_b):>10}"
        f"{table.only_in_a:>10}{table.only_in_b:>10}  {'same' if table.same else 'DIFFERENT'}"
    )


def _details(table: TableComparison) -> list[str]:
    if table.same and not table.notes:
        return []
    lines = [
        "",
        f"{table.table}: {_rows_text(table.only_in_a)} only in A, {_rows_text(table.only_in_b)} only in B",
    ]
    lines += [f"  note: {note}" for note in table.notes]
    for side, rows in (("A", table.rows_a), ("B", table.rows_b)):
        if rows is None:
            lines.append(f"  absent from {side}")
    if table.columns_only_in_a:
        lines.append(f"  columns only in A: {', '.join(table.columns_only_in_a)}")
    if table.columns_only_in_b:
        lines.append(f"  columns only in B: {', '.join(table.columns_only_in_b)}")
    lines += _sample_lines("A", table.sample_a, table.only_in_a)
    lines += _sample_lines("B", table.sample_b, table.only_in_b)
    return lines


def _sample_lines(side: str, sample: Sequence[Mapping[str, Any]], total: int) -> list[str]:
    if not sample:
        return []
    shown = f"{len(sample)} of {total}" if len(sample) < total else str(total)
    lines = [f"  rows only in {side} ({shown}; NULL columns left out):"]
    for row in sample:
        lines.append("    " + " ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    return lines


def _verdict(comparison: CdmComparison) -> str:
    if comparison.same:
        return f"SAME: the {len(comparison.tables)} tables compared hold the same facts"
    names = ", ".join(t.table for t in comparison.differing)
    return f"DIFFERENT: {len(comparison.differing)} of {len(comparison.tables)} tables differ: {names}"
