"""What the vocabulary in use did to the CDM: results.vocabulary and results.vocabulary_change.

results.vocabulary records the vocabulary the build copied (digest of its files, version, sizes) and
whether it is the bundled demo subset, which maps only the demo's codes: a build that uses it on
other data is warned about (run log, results.vocabulary.warning).

When the digest differs from the one recorded in the published database, the build compares, per
event table and source code, the concepts the code maps to in the published database and in this
build: the regression report of a vocabulary upgrade, one row per code that changed: newly mapped
(0 -> a concept), newly unmapped, concept changed, or moved to another domain's table (left_table
here, entered_table there). Codes are compared, not rows: a surrogate id includes the concept
(a code may map to several), so a remapped row gets a new id. Codes the new data alone brings or
drops show as entered/left too: the report is exact when both builds read the same lake.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from rwe_assets.lib.cdm import sql
from rwe_assets.lib.sql_text import quote_identifier, quote_literal
from rwe_assets.lib.vocabulary import VocabularyStore

_SQL = "vocabulary_change"  # lib/sql/cdm/vocabulary_change.sql, by section

DEMO_VERSION_PREFIX = "rwe_assets demo subset"
# Above this share of unmapped event rows the demo subset is evidently not mapping the data it is used
# on (the demo itself stays well below; data from elsewhere was seen at 34% of conditions, 73% of procedures).
DEMO_UNMAPPED_WARNING_SHARE = 0.25


def record_vocabulary(
    con: duckdb.DuckDBPyConnection, store: VocabularyStore, published: Path, event_tables: tuple[str, ...]
) -> str | None:
    """Write results.vocabulary and results.vocabulary_change; returns the demo-subset warning, if any."""
    warning = _demo_warning(con, store, event_tables)
    sql.execute(
        con,
        sql.render(_SQL, "vocabulary"),
        {
            "digest": store.digest,
            "version": store.version,
            "concepts": store.row_counts["concept"],
            "relationships": store.row_counts["concept_relationship"],
            "ancestors": store.row_counts["concept_ancestor"],
            "demo": is_demo_subset(store),
            "warning": warning,
        },
    )
    _vocabulary_change(con, store, published, event_tables)
    return warning


def is_demo_subset(store: VocabularyStore) -> bool:
    return (store.version or "").startswith(DEMO_VERSION_PREFIX)


def _demo_warning(con, store: VocabularyStore, event_tables: tuple[str, ...]) -> str | None:
    if not is_demo_subset(store):
        return None
    total = unmapped = 0
    for table in event_tables:
        column = _domain_concept_column(table)
        statement = sql.render(_SQL, "unmapped_rows", {"concept_id": column, "table": _cdm(table)})
        rows, zero = con.execute(statement).fetchone()
        total, unmapped = total + rows, unmapped + zero
    if total == 0 or unmapped / total <= DEMO_UNMAPPED_WARNING_SHARE:
        return None
    return (
        f"the bundled demo vocabulary maps only the demo's codes: {unmapped} of {total} event rows "
        f"({100 * unmapped / total:.1f}%) are unmapped; set RWE_VOCAB_DIR to an Athena download"
    )


def _domain_concept_column(table: str) -> str:
    return f"{table.split('_')[0]}_concept_id"


def _cdm(table: str, catalog: str = "") -> sql.Fragment:
    """cdm.<table> (of `catalog`, an attached database), quoted."""
    return sql.Fragment(f"{catalog + '.' if catalog else ''}cdm.{quote_identifier(table)}")


def _vocabulary_change(con, store: VocabularyStore, published: Path, event_tables: tuple[str, ...]) -> None:
    con.execute(sql.render(_SQL, "change_table"))
    previous = _previous_vocabulary(published)
    if previous is None or previous[0] == store.digest:
        return
    con.execute(f"ATTACH {quote_literal(str(published))} AS published (READ_ONLY)")  # no parameters
    try:
        con.execute(sql.render(_SQL, "mapping_table"))
        for table in event_tables:
            domain = table.split("_")[0]
            fill = {
                "source_value": f"{domain}_source_value",
                "concept_id": f"{domain}_concept_id",
                "table": _cdm(table),
                "published_table": _cdm(table, "published"),
            }
            sql.execute(con, sql.render(_SQL, "mapping", fill), {"cdm_table": table})
        sql.execute(con, sql.render(_SQL, "change"), {"previous": previous[1], "current": store.version})
        con.execute("DROP TABLE vocabulary_mapping")
    finally:
        con.execute("DETACH published")


def _previous_vocabulary(published: Path) -> tuple[str, str | None] | None:
    """(digest, version) recorded in the published database, or None (first build, or built before
    results.vocabulary existed)."""
    if not published.exists():
        return None
    with duckdb.connect(str(published), read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'results' AND table_name = 'vocabulary'"
        ).fetchone()[0]
        if not exists:
            return None
        return con.execute("SELECT digest, vocabulary_version FROM results.vocabulary").fetchone()
