"""The CDM build's SQL (DuckDB dialect, lib/sql/cdm/*.sql) as Spark SQL, through sqlglot.

A file is rendered first (lib/cdm/sql.py fills its ``{placeholders}``), then each statement is parsed as
DuckDB and written as Spark. ``$name`` values stay values: they become Spark's named parameter markers
``:name``, bound by ``spark.sql(text, args=...)``. Rewrites sqlglot does not make are made here on the
tree (``_rewrite``); what neither can rewrite is reported per statement (``Transpiled.issues``), so a
file that needs a hand-written Spark variant is known before it runs. ``NON_PORTABLE`` lists every
construct with the rewrite chosen; docs/operations.md ("The CDM build on Spark") has the findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel

from rwe_assets.lib import sql_loader
from rwe_assets.lib.cdm import sql

_SPARK = Dialect.get_or_raise("spark")
# DuckDB functions sqlglot leaves as they are, and their Spark names (NON_PORTABLE says why each holds)
_RENAMED = {"hash": "XXHASH64", "arg_min_null": "MIN_BY"}
# column names the CDM SQL gives dates; `a - b` of two of them is a day count in DuckDB only
_DATE_NAME = re.compile(r"(date|_end|_start)$")


@dataclass(frozen=True)
class Construct:
    """A DuckDB construct of the CDM SQL that Spark does not take as written, and what is done about it.
    `automatic`: the transpiler rewrites it (sqlglot or ``_rewrite``); otherwise a statement holding it
    is reported and needs a Spark variant written by hand."""

    name: str
    duckdb: str
    spark: str
    automatic: bool


NON_PORTABLE = (
    Construct("cast_shorthand", "x::DATE", "CAST(x AS DATE)", True),
    Construct("parameter", "$type_ehr", ":type_ehr, bound by spark.sql(text, args=...)", True),
    Construct("qualify", "QUALIFY row_number() OVER (...) = 1", "a subquery filtered on the window", True),
    Construct("arg_min", "arg_min(x, y) / arg_max", "MIN_BY(x, y) / MAX_BY", True),
    Construct("struct_literal", "{'a': x}", "STRUCT(x AS a)", True),
    Construct(
        "list_and_lambda",
        "[1, 2], list_transform(l, x -> x + 1)",
        "ARRAY(1, 2), TRANSFORM(l, x -> x + 1)",
        True,
    ),
    Construct(
        "series", "unnest(generate_series(a, b, INTERVAL 1 MONTH))", "EXPLODE(SEQUENCE(a, b, ...))", True
    ),
    Construct(
        "string_agg_order", "string_agg(x, ',' ORDER BY y)", "LISTAGG(x, ',') WITHIN GROUP (ORDER BY y)", True
    ),
    Construct("regexp_full_match", "regexp_full_match(s, 'p')", "s RLIKE '^(?:p)$'", True),
    Construct(
        "temp_table",
        "CREATE OR REPLACE TEMP TABLE t AS q",
        "CREATE OR REPLACE TEMPORARY VIEW t AS q (cache it when read twice)",
        True,
    ),
    Construct("exclude", "SELECT * EXCLUDE (a)", "SELECT * EXCEPT (a) (Spark 4)", True),
    Construct(
        "cast_of_unnest",
        "unnest(list)::DATE",
        "EXPLODE(CAST(list AS ARRAY<DATE>)) (Spark: no generator inside an expression)",
        True,
    ),
    Construct(
        "subquery_in_values",
        "(VALUES ('a', (SELECT ..))) t(x, y)",
        "(SELECT 'a' AS x, (SELECT ..) AS y UNION ALL ..) t (Spark has no subquery in VALUES)",
        True,
    ),
    Construct(
        "star_replace",
        "SELECT * REPLACE (f(a) AS a)",
        "SELECT * EXCEPT (a), f(a) AS a (the column moves last: the CDM SQL reads it by name)",
        True,
    ),
    Construct(
        "asof_join",
        "ASOF LEFT JOIN",
        "a range join ranked with row_number(), or a window over the union",
        False,
    ),
    Construct(
        "rowid",
        "rowid",
        "a row id column added where the table is made (monotonically_increasing_id())",
        False,
    ),
    Construct(
        "duckdb_hash",
        "hash(a, b)",
        "XXHASH64(a, b): another 64-bit hash, right where only equal hashes matter (the CDM SQL hashes "
        "only to find candidate equal rows, then compares them: visit_rollup). Spark's skips NULL "
        "arguments (hash(NULL, 'a') = hash('a')): never use it as a row's identity",
        True,
    ),
    Construct(
        "arg_min_null",
        "arg_min_null(x, y)",
        "MIN_BY(x, y) (Spark's keeps a NULL x of the row with the smallest y, as arg_min_null does)",
        True,
    ),
    Construct(
        "date_difference",
        "end_date - start_date (an integer)",
        "DATEDIFF(end_date, start_date) (Spark: an interval)",
        False,
    ),
    Construct(
        "delete",
        "DELETE FROM cdm.t WHERE ...",
        "the table rewritten without those rows (a Delta overwrite)",
        False,
    ),
    Construct(
        "update_from",
        "UPDATE cdm.t SET ... FROM u WHERE ...",
        "MERGE INTO (delta-spark), or the table rewritten from a LEFT JOIN",
        False,
    ),
    Construct(
        "temp_table_ddl",
        "CREATE TEMP TABLE t (a INT, ..) (columns, no query)",
        "a query making the rows (Spark has temporary views of a query, no temporary tables)",
        False,
    ),
    Construct(
        "union_by_name",
        "a UNION ALL BY NAME b",
        "both sides selecting the columns in one order (Spark SQL has no BY NAME; DataFrame.unionByName)",
        False,
    ),
    Construct(
        "macro",
        "CREATE MACRO f(x) AS ...",
        "inlined, or a Spark SQL function (CREATE FUNCTION ... RETURN)",
        False,
    ),
    Construct(
        "unknown_function", "a function sqlglot does not know", "a Spark equivalent written by hand", False
    ),
)
CONSTRUCTS = {c.name: c for c in NON_PORTABLE}


@dataclass(frozen=True)
class Transpiled:
    """One statement: its DuckDB text, its Spark text, the ``:parameters`` it binds and the names of the
    constructs (``NON_PORTABLE``) it holds that need a hand rewrite."""

    duckdb: str
    spark: str
    parameters: tuple[str, ...]
    issues: tuple[str, ...]


def transpile(statement: str, values: Mapping[str, object] | None = None) -> Transpiled:
    """One rendered DuckDB statement as Spark SQL. With `values`, each ``$name`` becomes the literal
    value (Spark takes no parameter marker in a view's query, and the CDM SQL's values are concept ids
    and flags set by code); without, a ``:name`` marker. A statement sqlglot cannot parse raises
    sqlglot.ParseError; a construct it cannot generate for Spark is reported, not raised."""
    tree = sqlglot.parse_one(statement, read="duckdb")
    issues = _hand_rewrites(tree)
    tree = tree.transform(_rewrite)
    if values is not None:
        tree = bind(tree, values)
    generator = _SPARK.generator(unsupported_level=ErrorLevel.IGNORE)
    text = generator.generate(tree, copy=False)
    if isinstance(tree, exp.Create) and tree.args.get("replace"):
        # sqlglot writes a temp table as a temporary view and drops OR REPLACE with it
        text = re.sub(
            r"^((?:/\*.*?\*/\s*)*)CREATE TEMPORARY VIEW",
            r"\1CREATE OR REPLACE TEMPORARY VIEW",
            text,
            flags=re.S,
        )
    issues += [f"unsupported: {message}" for message in generator.unsupported_messages]
    parameters = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder) if p.name}))
    return Transpiled(statement, text, parameters, tuple(dict.fromkeys(issues)))


def transpile_file(
    name: str, fill: Mapping[str, str] | None = None, values: Mapping[str, object] | None = None
) -> dict[str | None, list[Transpiled]]:
    """Every statement of lib/sql/cdm/<name>.sql, rendered with `fill` then transpiled (`values` as in
    ``transpile``), by section (None for a file without sections)."""
    sections = list(sql.sections(name)) or [None]
    return {
        section: [transpile(s, values) for s in sql.statements(sql.render(name, section, fill))]
        for section in sections
    }


def placeholders(name: str) -> set[str]:
    """The ``{placeholders}`` of lib/sql/cdm/<name>.sql outside comments, sections excluded."""
    return sql_loader.placeholders(sql.sql_text(name)) - set(sql.sections(name))


def dummy_fill(name: str) -> dict[str, str]:
    """A rendering of lib/sql/cdm/<name>.sql for transpiling alone: a concept id is 0, a table kind is
    TEMP TABLE, a VALUES list one row, anything else a dummy identifier."""

    def value(key: str) -> str:
        if key.endswith("concept_id"):
            return sql.Fragment("0")
        if key.endswith("_kind"):
            return sql.Fragment("TEMP TABLE")
        if key.endswith("_map") and key != "map_table":
            return sql.Fragment("('dummy', 0)")
        return f"dummy_{key}"

    return {key: value(key) for key in placeholders(name)}


def cdm_files() -> list[str]:
    return sorted(
        entry.name.removesuffix(".sql") for entry in sql.SQL_DIR.iterdir() if entry.name.endswith(".sql")
    )


def report(fill: Callable[[str], Mapping[str, str]] = dummy_fill) -> dict[str, dict[str, int]]:
    """For every CDM SQL file, the hand rewrites it needs: {file: {construct: statements holding it}};
    a file needing none maps to {}."""
    found: dict[str, dict[str, int]] = {}
    for name in cdm_files():
        counts: dict[str, int] = {}
        for statements in transpile_file(name, fill(name)).values():
            for issue in (i for t in statements for i in t.issues):
                counts[issue] = counts.get(issue, 0) + 1
        found[name] = counts
    return found


def _rewrite(node: exp.Expression) -> exp.Expression:
    """Rewrites sqlglot does not make for Spark: regexp_full_match (Spark has none) becomes RLIKE with
    the pattern anchored; a VALUES list holding a subquery becomes a UNION ALL of SELECTs; a cast of
    an unnested list becomes the unnest of the cast list; a function of ``_RENAMED`` takes its Spark name."""
    if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
        return exp.Anonymous(
            this=_RENAMED[node.name.lower()], expressions=[e.copy() for e in node.expressions]
        )
    if isinstance(node, exp.Values) and node.find(exp.Subquery) and node.alias_column_names:
        return _values_as_union(node)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Explode):
        to = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[node.to.copy()], nested=True)
        return exp.Explode(this=exp.Cast(this=node.this.this.copy(), to=to))
    if isinstance(node, exp.Select) and any(
        _star(e) is not None and _star(e).args.get("replace") for e in node.expressions
    ):
        return _replace_as_except(node)
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            anchored = exp.Literal.string(f"^(?:{pattern.this})$")
        else:
            anchored = exp.func("concat", exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$"))
        return exp.RegexpLike(this=node.this, expression=anchored)
    return node


def _star(node: exp.Expression) -> exp.Star | None:
    """The star of a select item `*` or `t.*`, else None."""
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return node.this
    return node if isinstance(node, exp.Star) else None


def _replace_as_except(select: exp.Select) -> exp.Select:
    """SELECT t.* REPLACE (f(a) AS a) as SELECT t.* EXCEPT (a), f(a) AS a: Spark has no REPLACE."""
    items = []
    for item in select.expressions:
        star = _star(item)
        replaced = list(star.args.get("replace") or []) if star is not None else []
        if not replaced:
            items.append(item)
            continue
        item = item.copy()
        star = _star(item)
        star.set("replace", None)
        star.set("except_", [*(star.args.get("except_") or []), *(exp.column(a.alias) for a in replaced)])
        items += [item, *(a.copy() for a in replaced)]
    select = select.copy()
    select.set("expressions", items)
    return select


def _values_as_union(node: exp.Values) -> exp.Expression:
    """(VALUES (a, b), ..) t(x, y) as (SELECT a AS x, b AS y UNION ALL ..) t: Spark refuses a scalar
    subquery in VALUES."""
    names = node.alias_column_names
    selects = [
        exp.select(
            *(exp.alias_(value.copy(), name) for value, name in zip(row.expressions, names, strict=True))
        )
        for row in node.expressions
    ]
    union = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    return exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier(node.alias)))


def bind(tree: exp.Expression, values: Mapping[str, object]) -> exp.Expression:
    """`tree` with each ``$name``/``:name`` marker replaced by the literal of ``values[name]`` (a list
    becomes an array)."""
    return tree.transform(lambda node: _bind(node, values))


def _bind(node: exp.Expression, values: Mapping[str, object]) -> exp.Expression:
    if isinstance(node, exp.Placeholder) and node.name:
        try:
            return exp.convert(values[node.name])
        except KeyError:
            raise KeyError(f"SQL parameter ${node.name}: expected a value, found none") from None
    return node


def spark_functions(spark) -> frozenset[str]:
    """The names of the functions a SparkSession knows (built-in and registered), lower case."""
    return frozenset(row[0].rsplit(".", 1)[-1].lower() for row in spark.sql("SHOW FUNCTIONS").collect())


def spark_check(spark, transpiled: Transpiled, functions: frozenset[str] | None = None) -> list[str]:
    """What a SparkSession rejects in a transpiled statement without running it: the error class of
    Spark's parser, or each function Spark does not know (`functions`: ``spark_functions``, looked
    up once per session). Tables are not looked up (the inputs need not exist)."""
    functions = spark_functions(spark) if functions is None else functions
    try:
        spark._jsparkSession.sessionState().sqlParser().parsePlan(transpiled.spark)
    except Exception as error:  # py4j wraps Spark's ParseException
        found = re.search(r"\[([A-Z_.]+)\]", str(error)) or re.search(r"ParseException", str(error))
        return [f"spark parser: {found.group(1) if found and found.groups() else 'syntax error'}"]
    names = set()
    for node in sqlglot.parse_one(transpiled.spark, read="spark").find_all(exp.Func):
        call = re.match(r"([A-Za-z_]\w*)\(", node.sql("spark"))
        if call:
            names.add(call.group(1).lower())
    return [f"spark function unknown: {name}" for name in sorted(names - functions)]


_DETECTORS: dict[str, Callable[[exp.Expression], bool]] = {
    "asof_join": lambda n: isinstance(n, exp.Join) and str(n.args.get("method") or "").upper() == "ASOF",
    "rowid": lambda n: isinstance(n, exp.Column) and n.name.lower() == "rowid",
    "date_difference": lambda n: (
        isinstance(n, exp.Sub)
        and all(
            isinstance(side, exp.Column) and _DATE_NAME.search(side.name) for side in (n.this, n.expression)
        )
    ),
    "delete": lambda n: isinstance(n, exp.Delete),
    "update_from": lambda n: isinstance(n, exp.Update),
    "temp_table_ddl": lambda n: (
        isinstance(n, exp.Create)
        and str(n.args.get("kind")).upper() == "TABLE"
        and n.expression is None
        and n.find(exp.TemporaryProperty) is not None
    ),
    "union_by_name": lambda n: isinstance(n, exp.Union) and bool(n.args.get("by_name")),
    "macro": lambda n: isinstance(n, exp.Create) and str(n.args.get("kind")).upper() in ("MACRO", "FUNCTION"),
    "unknown_function": lambda n: isinstance(n, exp.Anonymous) and n.name.lower() not in _RENAMED,
}


def _hand_rewrites(tree: exp.Expression) -> list[str]:
    """The names of the constructs in `tree` the transpiler cannot rewrite (``automatic`` False)."""
    found = []
    for node in tree.walk():
        for name, detect in _DETECTORS.items():
            if detect(node):
                detail = f": {node.name.lower()}" if name == "unknown_function" else ""
                found.append(name + detail)
    return found
