"""Skip a CDM build whose inputs are those of the last one (issue 26, the first incremental step).

A build reads the staging and linkage Delta tables, the raw ingest manifest (for cdm_source), the
vocabulary store and the person priorities of the registry, with the package's code. The input
fingerprint is a sha256 over each of those tables' Delta table id and version, the vocabulary digest,
the priorities and a digest of the code; the build records it in `results.build_fingerprint`. When the
next build finds the same fingerprint in the current build.duckdb, that file already holds what the
build would write, and it is kept.

Delta versions change on every write, so this is exact but conservative: a table rewritten with the
same rows counts as changed (a full build). Every other case is a full build too (the fallback
rule, docs/operations.md "Incremental refresh"): no earlier build, an earlier build without a
fingerprint, a remote lake, or any input table, the vocabulary, the priorities or the code changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb

from rwe_assets.lib import lake
from rwe_assets.lib.governance import history
from rwe_assets.lib.sources import SourceRegistry

PACKAGE_DIR = Path(__file__).resolve().parents[2]
INPUT_LAYERS = ("staging", "linkage")  # every Delta table under these; plus the raw manifest
CODE_SUFFIXES = (".py", ".sql", ".csv", ".json", ".yaml")
FINGERPRINT_TABLE = "results.build_fingerprint"


def code_digest() -> str:
    """sha256 over the package's source files: staging and linkage code change their tables' versions
    anyway; this covers the CDM's own code and specification files."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def input_versions(lake_dir) -> dict[str, str] | None:
    """Table id and Delta version of every input table (layer/name -> "id:version"); None for a remote
    lake (not listed: always a full build). The id tells a table written anew (an erasure rewrites
    tables from version 0) from the one whose version it repeats."""
    local = Path(str(lake_dir))
    if "://" in str(lake_dir) or not local.is_dir():
        return None
    versions = {}
    for layer in INPUT_LAYERS:
        for path in history.delta_tables(local / layer):
            table = lake.open_table(path)
            if table is not None:
                versions[path.relative_to(local).as_posix()] = _identity(table)
    manifest = lake.open_table(local / "raw" / "_manifest")
    versions["raw/_manifest"] = _identity(manifest) if manifest is not None else ""
    return versions


def _identity(table) -> str:
    return f"{table.metadata().id}:{table.version()}"


def input_state(lake_dir, vocabulary_digest: str, registry: SourceRegistry) -> dict | None:
    """What a build reads (tables -> "id:version", vocabulary digest, priorities, code digest), or None
    for a remote lake. The incremental build (lib/cdm/incremental.py) diffs it with the last build's."""
    versions = input_versions(lake_dir)
    if versions is None:
        return None
    priorities = sorted((s.name, s.person_priority) for s in registry if s.person_priority is not None)
    return {
        "tables": versions,
        "vocabulary": vocabulary_digest,
        "priorities": [list(p) for p in priorities],
        "code": code_digest(),
    }


def fingerprint_of(state: dict | None) -> str | None:
    if state is None:
        return None
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def input_fingerprint(lake_dir, vocabulary_digest: str, registry: SourceRegistry) -> str | None:
    return fingerprint_of(input_state(lake_dir, vocabulary_digest, registry))


def record_fingerprint(
    con: duckdb.DuckDBPyConnection, fingerprint: str | None, state: dict | None = None
) -> None:
    """The fingerprint, and the input state it was made from (JSON, for the next incremental build)."""
    con.execute(f"CREATE OR REPLACE TABLE {FINGERPRINT_TABLE} (fingerprint VARCHAR, input_state VARCHAR)")
    if fingerprint is not None:
        document = json.dumps(state, sort_keys=True) if state is not None else None
        con.execute(f"INSERT INTO {FINGERPRINT_TABLE} VALUES (?, ?)", [fingerprint, document])


def recorded_fingerprint(database: Path) -> str | None:
    """The fingerprint a complete build.duckdb recorded, or None (no file, none recorded, unreadable)."""
    return _recorded(database, "fingerprint")


def recorded_state(database: Path) -> dict | None:
    """The input state a complete build.duckdb recorded, or None (none recorded, or unreadable)."""
    state = _recorded(database, "input_state")
    return json.loads(state) if state else None


def _recorded(database: Path, column: str) -> str | None:
    if not database.is_file():
        return None
    try:
        with duckdb.connect(str(database), read_only=True) as con:
            row = con.execute(f"SELECT max({column}) FROM {FINGERPRINT_TABLE}").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None
