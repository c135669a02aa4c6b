"""The CDM build for what changed (issue 26): rebuild the persons a staging run touched, keep the rest.

When staging's last run was incremental and the last build.duckdb recorded its inputs
(lib/cdm/reuse.py), the build need not start from nothing. `plan_build` decides, by the fallback rule
of docs/operations.md ("Incremental refresh"), and finds the persons to rebuild: the person_id, in
the crosswalk the last build read or in today's, of every record staging/_touched lists, of every
staged specimen added, changed or removed, and of every crosswalk row that changed. lib/cdm/build.py
then runs the same steps (lib/cdm/steps.py) into a scratch database whose person-scoped staging views
and crosswalk `restrict_inputs` narrows to those persons, and `merge` replaces their rows in a copy
of the last build. Location, care site and provider come from every staged row, as in a full build;
the genomics step reads every person (the genomic tables are taken whole), and the results are
recomputed over the merged file (summing the per-person ledger, lib/cdm/ledger.py). Ids come from
the persistent id maps (`assign_ids(..., narrow=True)` reads only the keys asked), so they equal a full build's;
observation periods and eras, numbered by row, are numbered again. Before it replaces them, `merge` keeps
the rebuilt persons' rows as the last build had them in a side file (REPLACED_FILE), which the DQD checks
read to count the change instead of every row (lib/quality/incremental.py).
"""

from __future__ import annotations

import functools
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from rwe_assets.lib import lake, publish
from rwe_assets.lib.cdm import reuse
from rwe_assets.lib.cdm.ledger import LEDGER_TABLES
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.genomics.staging import SOURCE_SYSTEM as LAB
from rwe_assets.lib.genomics.staging import SPECIMEN, SPECIMEN_QUARANTINE, VARIANT, VARIANT_QUARANTINE
from rwe_assets.lib.publish import BUILD, INCREMENTAL_MARK
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging.incremental_state import STAGED_FILES, STATE_KEY, TOUCHED
from rwe_assets.lib.vocabulary import VOCABULARY_TABLES

# Above this share of all linked persons a full build is cheaper than deleting and re-inserting (a
# guess, as staging's FULL_BUILD_SHARE: docs/operations.md, "Incremental refresh").
MAX_PERSON_SHARE = 0.2
# Staging tables the CDM reads per person (filtered to the persons rebuilt); the others are read whole.
PERSON_VIEWS = ("person_source", "visit", "event", "note", "enrollment", "cost")
# Rebuilt whole from every staged row (a full build's rows), not per person.
WHOLE_TABLES = ("location", "care_site", "provider")
# Written whole by the scratch build's genomics step, which reads every person (the genetic tests'
# PROCEDURE_OCCURRENCE rows are merged per person with the rest of that table).
GENOMICS_WHOLE = ("specimen", "genomic_test", "target_gene", "variant_occurrence", "variant_annotation")
GENOMICS_PERSON_MAP = "crosswalk_genomics"
# Genomics staging is rewritten by every genomics run: its changes are found by a diff, not by version.
GENOMICS_TABLES = (SPECIMEN, VARIANT, SPECIMEN_QUARANTINE, VARIANT_QUARANTINE)
# Tables whose ids a full build numbers row_number() over these columns (lib/sql/cdm/*_era.sql,
# observation_period.sql), not from an id map: numbered again over the merged rows, as a full build does.
RENUMBERED = {
    "observation_period": ("observation_period_id", "person_id, observation_period_start_date"),
    "condition_era": ("condition_era_id", "person_id, condition_concept_id, condition_era_start_date"),
    "drug_era": ("drug_era_id", "person_id, drug_concept_id, drug_era_start_date"),
    "dose_era": (
        "dose_era_id",
        "person_id, drug_concept_id, dose_era_start_date, unit_concept_id, dose_value",
    ),
}
# Beside build.duckdb: the rows an incremental build replaced, for the DQD checks; table BUILD_MARK in the
# build's results schema names the side file's token and the fingerprint of the build it was made from.
REPLACED_FILE = f"{BUILD}.replaced"
BUILD_MARK = ".".join(INCREMENTAL_MARK)
# cost.cost_domain_id -> the table and id column its cost_event_id points to
COST_EVENTS = {
    "Visit": ("visit_occurrence", "visit_occurrence_id"),
    "Condition": ("condition_occurrence", "condition_occurrence_id"),
    "Drug": ("drug_exposure", "drug_exposure_id"),
    "Procedure": ("procedure_occurrence", "procedure_occurrence_id"),
    "Measurement": ("measurement", "measurement_id"),
    "Observation": ("observation", "observation_id"),
    "Device": ("device_exposure", "device_exposure_id"),
}


class Fallback(Exception):
    """Found while the incremental build runs: build in full instead (the message says why)."""


@dataclass(frozen=True)
class Plan:
    mode: str  # 'incremental' or 'full'
    reason: str
    persons: pa.Table | None = None  # person_id (BIGINT) of every person to rebuild
    all_persons: int = 0


def sliced_tables() -> list[str]:
    """The person-scoped tables `merge` replaces per person (and keeps the replaced rows of)."""
    return [t for t in person_tables() if t not in GENOMICS_WHOLE]


def person_tables() -> list[str]:
    """The CDM tables (not the vocabulary) with a person_id column, deleted and refilled per person."""
    return list(_person_tables())


@functools.cache
def _person_tables() -> tuple[str, ...]:  # a DQD run asks once per check: the spec is fixed
    return tuple(
        t.name
        for t in cdm_spec().tables
        if t.name not in VOCABULARY_TABLES and any(f.name == "person_id" for f in t.fields)
    )


def plan_build(lake_dir: Path, final: Path, state: dict | None, allow: bool = True) -> Plan:
    """Incremental, with the persons to rebuild, or full and why. Removes the last incremental
    build's side file first: a build that is not kept makes a new one or none."""
    _remove_database(final.parent / REPLACED_FILE)
    if not allow:
        return Plan("full", "full build requested")
    if state is None:
        return Plan("full", "the lake is remote (its tables are not listed)")
    prior = reuse.recorded_state(final)
    if prior is None:
        return Plan("full", "no earlier build with its inputs recorded")
    for part, what in (
        ("vocabulary", "the vocabulary"),
        ("priorities", "a person priority"),
        ("code", "the code"),
    ):
        if prior.get(part) != state.get(part):
            return Plan("full", f"{what} changed since the last build")
    lake_dir = Path(str(lake_dir))
    problem = _staging_problem(lake_dir, prior["tables"], state["tables"])
    if problem:
        return Plan("full", problem)
    try:
        persons, total, problem = _affected_persons(lake_dir, prior["tables"])
    except (OSError, DeltaError):  # the versions the last build read were vacuumed away
        return Plan("full", "the crosswalk or specimens the last build read can no longer be read")
    if problem:
        return Plan("full", problem)
    share = persons.num_rows / max(1, total)
    if share > MAX_PERSON_SHARE:
        return Plan("full", f"{share:.0%} of persons changed, over the {MAX_PERSON_SHARE:.0%} threshold")
    return Plan("incremental", f"{persons.num_rows} of {total} persons changed ({share:.1%})", persons, total)


def _staging_problem(lake_dir: Path, prior: dict[str, str], current: dict[str, str]) -> str | None:
    """Why the last staging run does not describe every staging change since the last build, if so:
    each staging table must be as the last build read it, or one commit further (a new table: its
    first), made by that run."""
    files = lake.open_table(lake.table_path(lake_dir, "staging", STAGED_FILES))
    if files is None:
        return "staging has no recorded run"
    modes = set(files.to_pyarrow_table(columns=["staging_mode"])["staging_mode"].to_pylist())
    if modes != {"incremental"}:
        return f"staging's last run was {'/'.join(sorted(m or '?' for m in modes))}, not incremental"
    run = files.history(1)[0].get(STATE_KEY)
    for key in sorted(set(prior) | set(current)):
        layer, _, name = key.partition("/")
        if layer != "staging" or name in GENOMICS_TABLES or prior.get(key) == current.get(key):
            continue
        if key not in current:
            return f"{key} disappeared since the last build"
        old_id, old_version = prior[key].rsplit(":", 1) if key in prior else (None, "-1")
        new_id, new_version = current[key].rsplit(":", 1)
        by_run = lake.open_table(lake_dir / key).history(1)[0].get(STATE_KEY) == run
        if old_id not in (None, new_id) or int(new_version) != int(old_version) + 1 or not by_run:
            return f"{key} changed by more than the last staging run (several runs, or a rewrite)"
    return None


def _version(lake_dir: Path, key: str, prior: dict[str, str]):
    """The Delta table `key` as the last build read it (None if it did not exist then)."""
    if key not in prior:
        return None
    version = int(prior[key].rsplit(":", 1)[1])
    table = DeltaTable(str(lake_dir / key), version=version)
    return table if f"{table.metadata().id}:{version}" == prior[key] else None


def _affected_persons(lake_dir: Path, prior: dict[str, str]) -> tuple[pa.Table, int, str | None]:
    """(person_id of every person to rebuild, all linked persons, a reason to build in full or None)."""
    crosswalk_key = "linkage/person_crosswalk"
    old = _version(lake_dir, crosswalk_key, prior)
    if old is None:
        return pa.table({}), 0, "the crosswalk the last build read is gone (rewritten)"
    columns = ["source_system", "source_person_id", "person_id"]
    con = duckdb.connect()
    try:
        con.register("old_crosswalk", old.to_pyarrow_table(columns=columns))
        con.register("new_crosswalk", lake.read_table(lake_dir / crosswalk_key, columns))
        con.register("touched", lake.read_table(lake.table_path(lake_dir, "staging", TOUCHED)))
        _specimen_changes(con, lake_dir, prior)
        con.execute(
            """
            CREATE TEMP TABLE changed_key AS
            SELECT DISTINCT source_system, source_person_id FROM touched WHERE source_person_id IS NOT NULL
            UNION SELECT source_system, source_person_id FROM specimen_change
            """
        )
        (unresolved,) = con.execute(
            "SELECT count(*) FROM changed_key k WHERE NOT EXISTS (SELECT 1 FROM old_crosswalk o "
            "WHERE o.source_system = k.source_system AND o.source_person_id = k.source_person_id) "
            "AND NOT EXISTS (SELECT 1 FROM new_crosswalk n "
            "WHERE n.source_system = k.source_system AND n.source_person_id = k.source_person_id)"
        ).fetchone()
        if unresolved:
            return pa.table({}), 0, f"{unresolved} changed source person(s) are in no crosswalk"
        persons = con.sql(
            """
            SELECT DISTINCT CAST(person_id AS BIGINT) AS person_id FROM (
                SELECT x.person_id FROM changed_key JOIN old_crosswalk x USING (source_system, source_person_id)
                UNION ALL
                SELECT x.person_id FROM changed_key JOIN new_crosswalk x USING (source_system, source_person_id)
                UNION ALL
                SELECT person_id FROM ((SELECT * FROM old_crosswalk EXCEPT SELECT * FROM new_crosswalk)
                                       UNION ALL (SELECT * FROM new_crosswalk EXCEPT SELECT * FROM old_crosswalk))
            ) ORDER BY person_id
            """
        ).to_arrow_table()
        (total,) = con.execute("SELECT count(DISTINCT person_id) FROM new_crosswalk").fetchone()
        return persons, total, None
    finally:
        con.close()


def _specimen_changes(con, lake_dir: Path, prior: dict[str, str]) -> None:
    """specimen_change(source_system, source_person_id): the lab persons of every staged specimen row
    added, changed or removed (genomics staging rewrites its tables on every run)."""
    key = f"staging/{SPECIMEN}"
    current = lake.read_table(lake_dir / key)
    old = _version(lake_dir, key, prior)
    empty = "SELECT NULL::VARCHAR AS source_system, NULL::VARCHAR AS source_person_id WHERE false"
    if current is None and old is None:
        con.execute(f"CREATE TEMP TABLE specimen_change AS {empty}")
        return
    con.register("new_specimen", current if current is not None else old.to_pyarrow_table().slice(0, 0))
    con.register("old_specimen", old.to_pyarrow_table() if old is not None else current.slice(0, 0))
    con.execute(
        f"""
        CREATE TEMP TABLE specimen_change AS
        SELECT DISTINCT '{LAB}' AS source_system, source_person_id FROM (
            (SELECT * FROM old_specimen EXCEPT ALL SELECT * FROM new_specimen)
            UNION ALL (SELECT * FROM new_specimen EXCEPT ALL SELECT * FROM old_specimen))
        WHERE source_person_id IS NOT NULL
        """
    )


# --- the scratch build: the steps over the persons rebuilt ----------------------------------------------


def restrict_inputs(con: duckdb.DuckDBPyConnection, persons: pa.Table, last_build: Path) -> None:
    """Narrow the crosswalk and the person-scoped staging views of the scratch build to `persons`
    (before PERSON; location, care site and provider have read every row). Raises Fallback when the
    narrowed views would change a rule person.sql and death.sql read over a whole source. Genomics
    reads every person (its test and gene rows are shared) through view GENOMICS_PERSON_MAP."""
    con.register("affected_arrow", persons)
    con.execute("CREATE OR REPLACE TEMP TABLE affected AS SELECT person_id FROM affected_arrow")
    _genomics_person_map(con, last_build)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE crosswalk_affected AS "
        "SELECT * FROM crosswalk_all WHERE person_id IN (SELECT person_id FROM affected)"
    )
    for name in PERSON_VIEWS:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE stg_{name}_affected AS SELECT * FROM stg_{name} "
            "SEMI JOIN crosswalk_affected USING (source_system, source_person_id)"
        )
    _check_source_rules(con)
    for name in PERSON_VIEWS:
        con.execute(f"CREATE OR REPLACE TEMP VIEW stg_{name} AS SELECT * FROM stg_{name}_affected")
    con.execute("CREATE OR REPLACE TEMP VIEW crosswalk_all AS SELECT * FROM crosswalk_affected")


def _check_source_rules(con) -> None:
    """person.sql asks of a source whether its person records carry no date of their own: asked of the
    narrowed views, the answer must not change."""
    (differing,) = con.execute(
        """
        WITH sources AS (SELECT source_system FROM stg_person_source_affected
                         UNION SELECT source_system FROM stg_visit_affected),
        rules AS (
            SELECT s.source_system,
                   s.source_system IN (SELECT source_system FROM stg_person_source WHERE record_updated IS NULL)
                       AS undated,
                   s.source_system IN (SELECT source_system FROM stg_person_source_affected
                                       WHERE record_updated IS NULL) AS undated_here
            FROM sources s
        )
        SELECT count(*) FROM rules WHERE undated <> undated_here
        """
    ).fetchone()
    if differing:
        raise Fallback("a source's record-date rule would differ over the changed persons alone")


def _genomics_person_map(con, last_build: Path) -> None:
    """View GENOMICS_PERSON_MAP: the whole crosswalk without the persons PERSON leaves out for want of a
    year of birth (person.sql's `crosswalk`): as the last build found them for the persons kept, as
    this build does (once PERSON ran) for the persons rebuilt."""
    con.execute("CREATE OR REPLACE TEMP TABLE crosswalk_whole AS SELECT * FROM crosswalk_all")
    con.execute(f"ATTACH {quote_literal(str(last_build))} AS last_build (READ_ONLY)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE kept_without_birth_year AS SELECT person_id "
        "FROM last_build.results.person_exclusion WHERE reason_code = 'NO_YEAR_OF_BIRTH' "
        "AND person_id NOT IN (SELECT person_id FROM affected)"
    )
    con.execute("DETACH last_build")
    # person.sql replaces this table; the view reads it when genomics runs, after PERSON
    con.execute("CREATE TABLE IF NOT EXISTS results.person_exclusion (person_id BIGINT, reason_code VARCHAR)")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {GENOMICS_PERSON_MAP} AS
        SELECT * FROM crosswalk_whole
        WHERE person_id NOT IN (SELECT person_id FROM kept_without_birth_year)
          AND person_id NOT IN (SELECT person_id FROM results.person_exclusion WHERE reason_code = 'NO_YEAR_OF_BIRTH')
        """
    )


# --- merging the scratch build into a copy of the last build --------------------------------------------


def merge(con: duckdb.DuckDBPyConnection, scratch: Path, persons: pa.Table) -> None:
    """In `con` (a copy of the last build): replace the rows of `persons` in every person-scoped table,
    their costs, their exclusions and ledger rows by the scratch build's; location, care site,
    provider and the genomic tables whole; number observation periods and eras again."""
    con.execute(f"ATTACH {quote_literal(str(scratch))} AS scratch (READ_ONLY)")
    con.register("affected_arrow", persons)
    con.execute("CREATE OR REPLACE TEMP TABLE affected AS SELECT person_id FROM affected_arrow")
    keep_replaced_rows(con, scratch.parent / REPLACED_FILE)
    mine = "person_id IN (SELECT person_id FROM affected)"
    costs = " OR ".join(
        f"(cost_domain_id = '{domain}' AND cost_event_id IN (SELECT {column} FROM cdm.{table} WHERE {mine}))"
        for domain, (table, column) in COST_EVENTS.items()
    )
    con.execute(f"DELETE FROM cdm.cost WHERE {costs}")
    con.execute("INSERT INTO cdm.cost BY NAME SELECT * FROM scratch.cdm.cost")
    for table in sliced_tables():
        _replace(con, f"cdm.{table}", mine)
    for table in (*WHOLE_TABLES, *GENOMICS_WHOLE):
        _replace(con, f"cdm.{table}", "true")
    for table, (column, order) in RENUMBERED.items():
        con.execute(
            f"UPDATE cdm.{table} SET {column} = n.id FROM (SELECT rowid AS row, "
            f"CAST(row_number() OVER (ORDER BY {order}) AS INTEGER) AS id FROM cdm.{table}) n "
            f"WHERE cdm.{table}.rowid = n.row AND cdm.{table}.{column} <> n.id"
        )
    for table in ("person_exclusion", *LEDGER_TABLES):
        _replace(con, f"results.{table}", mine)
    con.execute("DETACH scratch")


def copy_last_build(last: Path, work: Path, limits: tuple[str, int]) -> str:
    """`work`: the copy of the last build a merge starts from, written anew (publish.compact_database)
    when publishing would compact `last` (more than COMPACT_SHARE of it reclaimable), else a byte
    copy: so build.duckdb does not grow with every incremental build. Returns why (the report's)."""
    compact, reason = publish.space_of(last).decide()
    if compact:
        publish.compact_database(last, work, limits=limits)
    else:
        shutil.copyfile(last, work)
    return reason


def keep_replaced_rows(con: duckdb.DuckDBPyConnection, side: Path) -> None:
    """Write `side`: the persons of temp table `affected` (table affected), their rows of every
    `sliced_tables()` table as the build in `con` has them now (schema cdm), and a token; the build
    gets BUILD_MARK: that token and the fingerprint of the build it was copied from."""
    _remove_database(side)
    token = uuid.uuid4().hex
    con.execute(f"ATTACH {quote_literal(str(side))} AS replaced")
    try:
        con.execute("CREATE TABLE replaced.affected AS SELECT person_id FROM affected")
        con.execute("CREATE TABLE replaced.build_token AS SELECT $token AS token", {"token": token})
        con.execute("CREATE SCHEMA replaced.cdm")
        for table in sliced_tables():
            con.execute(
                f"CREATE TABLE replaced.cdm.{table} AS SELECT * FROM cdm.{table} "
                "WHERE person_id IN (SELECT person_id FROM affected)"
            )
    finally:
        con.execute("DETACH replaced")
    con.execute(
        f"CREATE OR REPLACE TABLE {BUILD_MARK} AS SELECT $token AS token, "
        f"(SELECT max(fingerprint) FROM {reuse.FINGERPRINT_TABLE}) AS base_fingerprint",
        {"token": token},
    )


def _remove_database(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _replace(con, table: str, where: str) -> None:
    con.execute(f"DELETE FROM {table} WHERE {where}")
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM scratch.{table} WHERE {where}")
