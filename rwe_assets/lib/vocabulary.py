"""Load an OMOP vocabulary in Athena's layout into the CDM schema of a DuckDB database.

Athena downloads (and the bundled `vocab/` subset) are tab-delimited files named CONCEPT.csv,
CONCEPT_RELATIONSHIP.csv, ... with a header row, no quoting (concept names may contain quotes) and
dates as YYYYMMDD. Point RWE_VOCAB_DIR at a full download to map with the full vocabulary; nothing
else changes. CPT-4 needs Athena's separate reconstitution step before it is in CONCEPT.csv.

Parsing a full download (about 2M concepts, 10M relationships, 10M ancestors) takes most of a
minute, so the files are loaded once per content digest into a store (a DuckDB file named by the
digest, written atomically) and every build starts as a copy of that file (`start_from_store`): the
vocabulary arrives as stored blocks, no row is re-inserted or re-compressed. The digest of a file is
remembered with its size and modification time (`digests.json` beside the stores), so an unchanged
download is not re-read on every build. The DQD checks that read vocabulary tables only are run once,
when the store is written, and recorded in it (lib/quality/runner.py record_vocabulary_checks): a DQD run
on the build reuses their outcomes instead of scanning the vocabulary again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm_spec import cdm_ddl, cdm_spec
from rwe_assets.lib.quality.dqd import record_vocabulary_checks
from rwe_assets.lib.sql_text import quote_literal

VOCABULARY_TABLES = (
    "concept",
    "vocabulary",
    "domain",
    "concept_class",
    "relationship",
    "concept_relationship",
    "concept_synonym",
    "concept_ancestor",
    "drug_strength",
    "source_to_concept_map",
)
REQUIRED = ("concept", "concept_relationship", "vocabulary")


def vocabulary_file(vocab_dir: Path, table: str) -> Path | None:
    """The file of one table, matched case-insensitively (Athena writes upper case)."""
    wanted = f"{table}.csv"
    for path in Path(vocab_dir).iterdir():
        if path.name.lower() == wanted:
            return path
    return None


@dataclass(frozen=True)
class VocabularyStore:
    path: Path
    digest: str
    version: str | None
    row_counts: dict[str, int]
    created: bool  # False: an earlier load of the same files was reused


def vocabulary_digest(vocab_dir: Path, known: Path | None = None) -> str:
    """sha256 over the name and content of every vocabulary table file of `vocab_dir`. `known`: a JSON
    file of file digests by path, size and mtime, read and updated, so unchanged files are not re-read."""
    remembered = _read_known(known)
    digest = hashlib.sha256()
    for table in VOCABULARY_TABLES:
        path = vocabulary_file(Path(vocab_dir), table)
        if path is None:
            continue
        digest.update(f"{table}\0".encode())
        digest.update(bytes.fromhex(_file_digest(path, remembered)))
    if known is not None:
        _write_known(known, remembered)
    return digest.hexdigest()


def _file_digest(path: Path, remembered: dict[str, list]) -> str:
    """The file's sha256, from `remembered` when its size and mtime (ns) are those recorded with it."""
    stat = path.stat()
    key = str(path.resolve())
    if remembered.get(key, [None])[:2] == [stat.st_size, stat.st_mtime_ns]:
        return remembered[key][2]
    with path.open("rb") as handle:
        value = hashlib.file_digest(handle, "sha256").hexdigest()
    remembered[key] = [stat.st_size, stat.st_mtime_ns, value]
    return value


def _read_known(known: Path | None) -> dict[str, list]:
    try:
        return json.loads(known.read_text(encoding="utf-8")) if known is not None else {}
    except (OSError, ValueError):  # absent or unreadable: every file is hashed again
        return {}


def _write_known(known: Path, remembered: dict[str, list]) -> None:
    partial = known.with_name(f".{known.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(remembered, indent=1), encoding="utf-8")
    os.replace(partial, known)  # atomic: a concurrent build reads the old or the new file, never half


def ensure_vocabulary_store(vocab_dir: Path, store_dir: Path, keep: int = 2) -> VocabularyStore:
    """The store of `vocab_dir`'s current files, loading them only if no store has their digest.
    Keeps the `keep` most recently used stores (the previous one serves change reports)."""
    if not Path(vocab_dir).is_dir():
        raise ConfigError(f"RWE_VOCAB_DIR: expected a folder of Athena vocabulary files, found {vocab_dir}")
    store_dir.mkdir(parents=True, exist_ok=True)
    digest = vocabulary_digest(vocab_dir, store_dir / "digests.json")
    path = store_dir / f"{digest[:16]}.duckdb"
    created = not path.exists()
    if created:
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        with duckdb.connect(str(partial)) as con:
            for statement in cdm_ddl("cdm", VOCABULARY_TABLES):
                con.execute(statement)
            load_vocabulary(con, vocab_dir)
            record_vocabulary_checks(con)  # DQD's vocabulary-only checks, once per version, not per build
            con.execute("CHECKPOINT")
        os.replace(partial, path)  # atomic: a concurrent or killed load never leaves half a store
    path.touch()  # most recently used
    for old in sorted(store_dir.glob("*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)[keep:]:
        old.unlink(missing_ok=True)
    with duckdb.connect(str(path), read_only=True) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM cdm.{t}").fetchone()[0] for t in VOCABULARY_TABLES}
        version = vocabulary_version(con)
    return VocabularyStore(path, digest, version, counts, created)


def start_from_store(store: VocabularyStore, target: Path) -> None:
    """Write `target` as a copy of the store's file: a new database whose `cdm` schema already holds the
    vocabulary tables (created by the same DDL as the rest of the CDM, whose CREATE ... IF NOT EXISTS
    then leaves them alone). A file copy, far cheaper than inserting millions of rows again."""
    shutil.copyfile(store.path, target)


def copy_vocabulary(con: duckdb.DuckDBPyConnection, store: Path, schema: str = "cdm") -> dict[str, int]:
    """Replace the vocabulary tables of `schema` with the store's (same DDL: a plain columnar copy)."""
    con.execute(f"ATTACH {quote_literal(str(store))} AS vocabulary_store (READ_ONLY)")  # no parameters
    try:
        counts = {}
        for table in VOCABULARY_TABLES:
            con.execute(f"DELETE FROM {schema}.{table}")
            con.execute(f"INSERT INTO {schema}.{table} SELECT * FROM vocabulary_store.cdm.{table}")
            counts[table] = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
    finally:
        con.execute("DETACH vocabulary_store")
    return counts


def load_vocabulary(con: duckdb.DuckDBPyConnection, vocab_dir: Path, schema: str = "cdm") -> dict[str, int]:
    """Replace the vocabulary tables of `schema` (already created from the CDM DDL) with the files of
    `vocab_dir`. Returns rows loaded per table. Missing optional tables stay empty."""
    vocab_dir = Path(vocab_dir)
    if not vocab_dir.is_dir():
        raise ConfigError(f"RWE_VOCAB_DIR: expected a folder of Athena vocabulary files, found {vocab_dir}")
    counts = {}
    for table in VOCABULARY_TABLES:
        path = vocabulary_file(vocab_dir, table)
        if path is None:
            if table in REQUIRED:
                raise ConfigError(f"{vocab_dir}: expected {table.upper()}.csv (Athena layout), found none")
            counts[table] = 0
            continue
        counts[table] = _load_table(con, schema, table, path)
    return counts


def _load_table(con, schema: str, table: str, path: Path) -> int:
    fields = cdm_spec().table(table).fields
    header = path.open(encoding="utf-8").readline().rstrip("\r\n").split("\t")
    lowered = [name.strip().lower() for name in header]
    missing = [f.name for f in fields if f.is_required and f.name not in lowered]
    if missing:
        raise ConfigError(f"{path} line 1: expected columns {', '.join(missing)}, found {', '.join(header)}")
    select = ", ".join(_cast(f.name, f.duckdb_type, f.name in lowered) for f in fields)
    columns = {name: "VARCHAR" for name in lowered}
    con.execute(f"DELETE FROM {schema}.{table}")
    con.execute(
        f"""
        INSERT INTO {schema}.{table}
        SELECT {select} FROM read_csv($path, delim = '\t', header = true, quote = '', escape = '',
                                      columns = $columns, auto_detect = false, strict_mode = false)
        """,
        {"path": str(path), "columns": columns},
    )
    return con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]


def _cast(name: str, duckdb_type: str, present: bool) -> str:
    if not present:
        return f"CAST(NULL AS {duckdb_type})"
    value = f"nullif(\"{name}\", '')"
    if duckdb_type == "DATE":
        return f"coalesce(try_strptime({value}, '%Y%m%d')::DATE, TRY_CAST({value} AS DATE))"
    return f"CAST({value} AS {duckdb_type})"


def vocabulary_version(con: duckdb.DuckDBPyConnection, schema: str = "cdm") -> str | None:
    row = con.execute(
        f"SELECT vocabulary_version FROM {schema}.vocabulary WHERE vocabulary_id = 'None'"
    ).fetchone()
    return row[0] if row else None
