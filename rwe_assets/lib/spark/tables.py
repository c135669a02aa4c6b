"""The CDM build's tables on Spark, and the build's SQL statements run against them.

Tables are DataFrames kept by the DuckDB name the SQL uses (``cdm.person``, ``results.person_exclusion``,
``mapped_event``) and registered as Spark temp views (``cdm__person``: a temp view cannot sit in a
schema), each materialized once when written (``localCheckpoint``): later reads do not recompute it,
and a window's row_number over ties gives one answer, as a DuckDB table does.

A statement is transpiled (lib/spark/transpile.py) and run by kind, as DuckDB would run it:
``CREATE [TEMP] TABLE .. AS`` replaces a table; ``CREATE VIEW`` stays a lazy view (read at use, as
DuckDB's); ``INSERT INTO t [BY NAME]`` appends rows cast to t's column types, missing columns null;
``DROP`` forgets. Anything else (DELETE, UPDATE) needs a Spark variant (lib/spark/build.py).
sqlglot writes ``CREATE TEMP TABLE`` as a temporary view, so the CDM SQL's temp tables are lazy views
here, defined again in DuckDB from their DuckDB statement when a DuckDB step reads them; a caller whose
later statements drop what its temp tables read (the visit rollup) asks for them as tables
(``temp_tables``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from rwe_assets.lib.spark import transpile as tr

_SCHEMAS = ("cdm", "results")
_QUALIFIED = tuple(f"{schema}." for schema in _SCHEMAS)


class NotPortable(ValueError):
    """A statement the transpiler reports as needing a hand rewrite, or a kind the interpreter lacks."""


def view_name(name: str) -> str:
    """The Spark temp view of the build's table `name`: cdm.person -> cdm__person."""
    return name.replace(".", "__")


def table_name(node: exp.Table) -> str:
    """The build's name of a table reference: cdm.person, or a bare intermediate."""
    return f"{node.db}.{node.name}" if node.db else node.name


@dataclass
class View:
    """A view defined on Spark: its DuckDB statement (to define it there too) and the tables it reads."""

    duckdb: str
    reads: tuple[str, ...]


@dataclass
class SparkTables:
    """The build's tables on one SparkSession. `written`: tables written on Spark since the caller last
    took them (lib/spark/build.py hands those to DuckDB)."""

    spark: object
    load: Callable[[list[str]], None] = lambda names: None  # makes the tables a statement reads current
    frames: dict[str, object] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    def put(self, name: str, df, *, written: bool = True) -> None:
        """Materialize `df` as table `name` (replacing it); `written` False: a copy of a table DuckDB or
        the lake holds, read once as it is (nothing to recompute: no checkpoint)."""
        if written:
            df = df.localCheckpoint(eager=True)
        df.createOrReplaceTempView(view_name(name))
        self.frames[name] = df
        self.views.pop(name, None)
        if written:
            self.written.add(name)

    def get(self, name: str):
        return self.frames[name] if name in self.frames else self.spark.table(view_name(name))

    def has(self, name: str) -> bool:
        return name in self.frames or name in self.views

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(view_name(name))
        self.frames.pop(name, None)
        self.views.pop(name, None)
        self.written.discard(name)

    def query(self, sql: str, values: Mapping[str, object] | None = None):
        """A Spark SQL query naming the build's tables as DuckDB does (cdm.person), `values` bound."""
        return self.spark.sql(_local(_parse(sql, values)).sql("spark"))

    def run(self, statement: str, values: Mapping[str, object], *, temp_tables: bool = False) -> None:
        """Run one rendered DuckDB statement of the CDM SQL on Spark; `temp_tables`: a DuckDB temp
        table is materialized as a table, not kept as a lazy view."""
        transpiled = tr.transpile(statement, values)
        if transpiled.issues:
            raise NotPortable(f"needs a Spark variant: {', '.join(transpiled.issues)}")
        self.run_spark(transpiled.spark, duckdb=statement, temp_tables=temp_tables)

    def run_spark(
        self,
        statement: str,
        duckdb: str | None = None,
        values: Mapping[str, object] | None = None,
        temp_tables: bool = False,
    ) -> None:
        """Run one Spark SQL statement naming the build's tables as DuckDB does. `duckdb`: the statement
        it was transpiled from (a view is defined in DuckDB by it too); `values`: its ``:name`` values."""
        tree = _parse(statement, values)
        self.load(_reads(tree))
        if isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() in ("TABLE", "VIEW"):
            self._create(tree, duckdb, temp_tables)
        elif isinstance(tree, exp.Insert):
            self._insert(tree)
        elif isinstance(tree, exp.Drop):
            self.drop(table_name(tree.find(exp.Table)))
        else:
            raise NotPortable(f"a {type(tree).__name__} statement: expected CREATE, INSERT or DROP")

    def _create(self, tree: exp.Create, duckdb: str | None, temp_tables: bool = False) -> None:
        name = table_name(tree.this.find(exp.Table) if not isinstance(tree.this, exp.Table) else tree.this)
        query = _local(tree.expression)
        made = sqlglot.parse_one(duckdb, read="duckdb") if temp_tables and duckdb is not None else tree
        if str(made.args.get("kind")).upper() == "VIEW":
            if duckdb is None:
                raise NotPortable(f"view {name}: a Spark variant makes tables, not views")
            reads = tuple(_reads(tree.expression))
            self.spark.sql(query.sql("spark")).createOrReplaceTempView(view_name(name))
            self.frames.pop(name, None)
            self.views[name] = View(duckdb, reads)
            return
        rows = self.spark.sql(query.sql("spark"))
        if name.startswith(_QUALIFIED) and name in self.frames:  # a CDM table rewritten keeps its DDL
            rows = append(self.frames[name].limit(0), rows)
        self.put(name, rows)

    def _insert(self, tree: exp.Insert) -> None:
        target = tree.this
        columns = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
        name = table_name(target.this if isinstance(target, exp.Schema) else target)
        query = tree.expression
        if tree.args.get("with_") is not None:  # WITH .. INSERT: the CTEs belong to the query
            query = query.copy()
            query.set("with_", tree.args["with_"])
        rows = self.spark.sql(_local(query).sql("spark"))
        if not tree.args.get("by_name"):
            rows = rows.toDF(*(columns or self.get(name).columns)[: len(rows.columns)])
        self.put(name, append(self.get(name), rows))


def append(existing, rows):
    """`existing` with `rows` added: columns by name, cast to `existing`'s types (as DuckDB casts on
    INSERT), a column `rows` lacks as null, a column `existing` lacks refused."""
    from pyspark.sql import functions as F

    present = set(rows.columns)
    extra = present - set(existing.columns)
    if extra:  # DuckDB refuses them too: a column would be lost
        raise ValueError(f"INSERT: no column {', '.join(sorted(extra))} in the target table")
    aligned = rows.select(
        [
            (F.col(f"`{f.name}`") if f.name in present else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in existing.schema.fields
        ]
    )
    return existing.unionByName(aligned)


def is_query(statement: str) -> bool:
    """Whether a Spark SQL statement is a query (a SELECT), not a CREATE, INSERT or DROP."""
    return isinstance(sqlglot.parse_one(statement, read="spark"), exp.Query)


def _parse(statement: str, values: Mapping[str, object] | None) -> exp.Expression:
    tree = sqlglot.parse_one(statement, read="spark")
    return tr.bind(tree, values) if values else tree


def _local(tree: exp.Expression) -> exp.Expression:
    """`tree` with cdm./results. tables named as their temp views."""

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db in _SCHEMAS and not node.args.get("catalog"):
            renamed = exp.to_table(view_name(table_name(node)))
            if node.alias:
                renamed.set("alias", node.args["alias"])
            return renamed
        return node

    return tree.copy().transform(rename)


def _reads(tree: exp.Expression) -> list[str]:
    """The build's tables `tree` names (a CREATE's or INSERT's target too), CTEs aside."""
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return sorted({table_name(t) for t in tree.find_all(exp.Table)} - ctes)
