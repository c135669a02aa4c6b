"""Hashing one side of a comparison: per row a content hash in which ids are replaced by the hash of
the row they point to, kept in temp tables of the comparing connection (the method: ``compare``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from rwe_assets.lib.cdm.compare.plan import DOMAIN_TABLES, TablePlan
from rwe_assets.lib.cdm_spec import CDM_SCHEMA
from rwe_assets.lib.sql_text import quote_identifier, quote_literal


def side_catalog(side: str) -> str:
    return f"cdm_{side}"


def side_table(side: str, table: str) -> str:
    return f"{side_catalog(side)}.{CDM_SCHEMA}.{quote_identifier(table)}"


def _rows(side: str, table: str) -> str:
    """Temp table: rid (rowid), id (primary key), hb (first-pass hash), second-pass raw columns."""
    return quote_identifier(f"cmp_{side}_{table}")


def _ids(side: str, table: str) -> str:
    """Temp table: id -> hb for the ids held once (a duplicated id resolves to nothing)."""
    return quote_identifier(f"cmp_{side}_{table}_ids")


def hashes_table(side: str, table: str) -> str:
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


def hash_side(
    con: duckdb.DuckDBPyConnection,
    side: str,
    plans: Sequence[TablePlan],
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


def _first_pass(con: duckdb.DuckDBPyConnection, side: str, plan: TablePlan, mapped: set[str]) -> None:
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
        FROM {side_table(side, plan.name)} src
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
            FROM {side_table(side, "domain")} d JOIN {targets} t ON t.kind = 'domain_id' AND t.key = d.domain_id
            """
        )
    if "concept" in columns:
        con.execute(
            f"""
            INSERT INTO {targets}
            SELECT 'field_concept', concept_id::VARCHAR, lower(split_part(concept_name, '.', 1))
            FROM {side_table(side, "concept")}
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


def _second_pass(con: duckdb.DuckDBPyConnection, side: str, plan: TablePlan, mapped: set[str]) -> None:
    """Per row: rid, h. h = md5(first-pass hash, self and polymorphic references), or the first-pass hash."""
    rows, hashes = _rows(side, plan.name), hashes_table(side, plan.name)
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
