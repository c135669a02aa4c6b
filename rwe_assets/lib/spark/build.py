"""The CDM build with its SQL on Spark: the same step table (lib/cdm/steps.py), step by step.

A step runs on Spark when every action of it is SQL that transpiles (lib/spark/transpile.py) or has a
Spark variant (``VARIANT_DIR``), an id assignment, or a Python step whose rule has a Spark variant
(``CALL_VALUES``: observation periods and the three eras) or runs its SQL on Spark itself
(``SPARK_CALLS``: the visit rollup); the others (genomics, the person exclusion, the results) run on
the build's DuckDB connection exactly as in the DuckDB build.
``SparkBuild.engines`` records which engine ran each step.

Tables move between the two only when a step needs them:
- into Spark, what a Spark step declares it reads or writes: staging and the crosswalk from their
  Delta tables (lib/spark/io.py), anything else (vocabulary, DDL'd CDM tables, DuckDB's intermediates)
  from DuckDB as Arrow;
- into DuckDB, before a DuckDB step and at the end, every table Spark wrote since: a CDM table as a
  Delta table of the lake (lake/cdm/<table>, io.write_delta) that DuckDB then loads into its DDL'd
  table; an intermediate or results table as Arrow.
Ids: a Spark step's keys go to DuckDB, where lib/id_map.py gives ids as in the DuckDB build, and the id
table comes back. At the end every CDM table DuckDB changed last is written to the lake's Delta too,
so lake/cdm holds the CDM the DuckDB file (published for analysts) holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import eras, sql
from rwe_assets.lib.cdm.steps import STEPS, Call, Ids, Sql, Step
from rwe_assets.lib.id_map import assign_ids
from rwe_assets.lib.spark import io, tables
from rwe_assets.lib.spark import transpile as tr
from rwe_assets.lib.spark import visits as spark_visits

# DuckDB SQL files and Python steps with a Spark variant: lib/sql/spark/<name>.sql, Spark SQL naming
# the build's tables as DuckDB does, each statement run by SparkTables (docs/operations.md has the
# rewrites); a bare SELECT in a variant is a count the build logs (``VARIANT_COUNTS``)
VARIANT_DIR = Path(__file__).parent.parent / "sql" / "spark"
_DELTA_INPUTS = ("stg_", "crosswalk_all")

# The Python steps (lib/cdm/build.py's Call) run on Spark by their variant, with the :values the DuckDB
# build passes to lib/cdm/eras.py (test_spark_variants.py checks they agree)
_ERA = {"persistence_window": eras.PERSISTENCE_WINDOW_DAYS}
CALL_VALUES: dict[str, dict[str, object]] = {
    "observation_period": {
        "period_type_concept_id": c.STANDARD_ALGORITHM_FROM_EHR,
        "enrollment_period_type_concept_id": c.PERIOD_WHILE_ENROLLED_IN_INSURANCE,
        "enrollment_gap": eras.ENROLLMENT_GAP_DAYS,
        "combine_event_span": True,
        "claim_type_concept_ids": [c.CLAIM, c.PHARMACY_CLAIM],
    },
    "condition_era": _ERA,
    "drug_era": _ERA,
    "dose_era": _ERA,
}
# What a variant's count counts: rows left out or uncovered, logged as lib/cdm/eras.py logs them
VARIANT_COUNTS = {
    "drug_era": "drug_exposure rows have no RxNorm ingredient (no drug era)",
    "observation_period": "event rows of enrolled persons lie outside every observation period",
}


def variants() -> set[str]:
    return {p.stem for p in VARIANT_DIR.glob("*.sql")}


def portable(name: str) -> bool:
    """lib/sql/cdm/<name>.sql runs on Spark: a variant, or every statement transpiled without issues."""
    if name in variants():
        return True
    return not any(t.issues for s in tr.transpile_file(name).values() for t in s)


def spark_key_query(action: Ids) -> str:
    """An id map's key query (DuckDB SQL, as lib/cdm/steps.py writes it) as Spark SQL: read in DuckDB's
    dialect, where "name" is a column (Spark's reads it as a string), its values written as literals
    (Spark takes no parameter marker)."""
    return tr.transpile(action.query, dict(action.values)).spark


def on_spark(step: Step) -> bool:
    """Whether `step` runs on Spark: SQL that runs there, id assignments and Python steps with a variant."""
    return all(_runs_on_spark(action) for action in step.actions)


def _runs_on_spark(action: Sql | Ids | Call) -> bool:
    if isinstance(action, Call):
        return action.name in SPARK_CALLS or (action.name in CALL_VALUES and action.name in variants())
    return isinstance(action, Ids) or portable(action.name)


@dataclass
class SparkBuild:
    """One build: `state` is lib/cdm/build.py's (its DuckDB connection holds the vocabulary and gets the
    CDM), `spark` a SparkSession, `scratch` a folder for Spark's Parquet before a Delta commit."""

    state: object
    spark: object
    scratch: Path
    engines: dict[str, str] = field(default_factory=dict)
    seconds_moving: float = 0.0  # tables moved between the engines, of the build's seconds
    _tables: tables.SparkTables = field(init=False)
    _duckdb_newer: set[str] = field(default_factory=set)  # written on DuckDB since Spark read them
    _in_delta: set[str] = field(default_factory=set)  # CDM tables whose Delta copy is current
    _views_in_duckdb: set[str] = field(default_factory=set)

    def __post_init__(self):
        self._tables = tables.SparkTables(self.spark, load=self._to_spark)

    def run(self, step: Step, run_on_duckdb) -> None:
        """Run `step` on Spark when it can, else `run_on_duckdb(state, step)` (lib/cdm/build.py's)."""
        if on_spark(step):
            self.engines[step.name] = "spark"
            self._to_spark(step.reads + step.writes)
            for action in step.actions:  # a Call here has a variant of its name, or SPARK_CALLS runs it
                if isinstance(action, Ids):
                    self._ids(action)
                elif isinstance(action, Call) and action.name in SPARK_CALLS:
                    SPARK_CALLS[action.name](self)
                else:
                    self._sql(action.name)
            self._duckdb_newer -= set(step.writes)
            return
        self.engines[step.name] = "duckdb"
        self.to_duckdb()
        run_on_duckdb(self.state, step)
        ids = {f"ids_{a.table}" for a in step.actions if isinstance(a, Ids)}
        self._duckdb_newer |= set(step.writes) | ids
        self._in_delta -= set(step.writes)

    def _sql(self, name: str) -> None:
        """lib/sql/cdm/<name>.sql transpiled, or the Spark variant of it or of the Python step `name`."""
        if name not in variants():
            for statement in sql.statements(sql.render(name)):
                self._tables.run(statement, sql.PARAMETERS)
            return
        values = {**sql.PARAMETERS, **CALL_VALUES.get(name, {})}
        for statement in sql.statements((VARIANT_DIR / f"{name}.sql").read_text()):
            if tables.is_query(statement):
                (count,) = self._tables.query(statement, values).first()
                self.state.log(f"{name} on Spark: {count} {VARIANT_COUNTS[name]}")
            else:
                self._tables.run_spark(statement, values=values)

    def _ids(self, action: Ids) -> None:
        con = self.state.con
        keys = self._tables.query(spark_key_query(action)).toArrow()
        con.register("_spark_keys", keys)
        try:
            table = assign_ids(con, self.state.lake_dir, action.table, "SELECT natural_key FROM _spark_keys")
        finally:
            con.unregister("_spark_keys")
        self._from_duckdb(table)

    # --- moving tables ------------------------------------------------------------------------------

    def _to_spark(self, names) -> None:
        for name in self._expand(names):
            if self._tables.has(name) and name not in self._duckdb_newer:
                continue
            if name.startswith(_DELTA_INPUTS):
                self._from_delta(name)
            elif self._in_duckdb(name):
                self._from_duckdb(name)
            self._duckdb_newer.discard(name)

    def _expand(self, names) -> list[str]:
        """`names`, a Spark view replaced by what it reads (kept itself: it is read lazily)."""
        found: list[str] = []
        for name in names:
            view = self._tables.views.get(name)
            found += self._expand(view.reads) if view else []
            found.append(name)
        return list(dict.fromkeys(found))

    def _from_delta(self, name: str) -> None:
        started = time.perf_counter()
        if name == "crosswalk_all":
            path = lake.table_path(self.state.lake_dir, "linkage", "person_crosswalk")
        elif name.startswith("stg_genomics_"):
            path = lake.table_path(self.state.lake_dir, "staging", name.removeprefix("stg_genomics_"))
        else:
            path = lake.table_path(self.state.lake_dir, "staging", name.removeprefix("stg_"))
        self._tables.put(name, io.read_delta(self.spark, path), written=False)
        self.seconds_moving += time.perf_counter() - started

    def _in_duckdb(self, name: str) -> bool:
        try:
            self.state.con.execute(f"DESCRIBE {name}")
        except Exception:  # duckdb.CatalogException: not made yet (the step makes it)
            return False
        return True

    def _from_duckdb(self, name: str) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        started = time.perf_counter()
        rows = self.state.con.sql(f"SELECT * FROM {name}").to_arrow_table()
        if rows.num_rows:
            df = self.spark.createDataFrame(rows)
        else:
            df = self.spark.createDataFrame([], from_arrow_schema(rows.schema))
        self._tables.put(name, df, written=False)
        self.seconds_moving += time.perf_counter() - started

    def to_duckdb(self) -> None:
        """Every table Spark wrote since the last call into DuckDB, then the views Spark defined."""
        started = time.perf_counter()
        con = self.state.con
        for name in sorted(self._tables.written):
            if name.startswith("cdm."):
                self._through_delta(name)
                continue
            con.register("_spark_rows", self._tables.get(name).toArrow())
            kind = "TABLE" if "." in name else "TEMP TABLE"
            con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM _spark_rows")
            con.unregister("_spark_rows")
        self._tables.written.clear()
        for name, view in self._tables.views.items():
            if name not in self._views_in_duckdb:
                sql.execute(con, view.duckdb)
                self._views_in_duckdb.add(name)
        self.seconds_moving += time.perf_counter() - started

    def _through_delta(self, name: str) -> None:
        path = self._delta_path(name)
        io.write_delta(self._tables.get(name), path, self.scratch)
        self.state.con.register("_spark_rows", lake.read_table(path))
        self.state.con.execute(f"DELETE FROM {name}")
        self.state.con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _spark_rows")
        self.state.con.unregister("_spark_rows")
        self._in_delta.add(name)

    def _delta_path(self, name: str):
        return lake.table_path(self.state.lake_dir, "cdm", name.removeprefix("cdm."))

    def finish(self, cdm_tables: list[str]) -> None:
        """Everything into DuckDB; every CDM table not yet current in the lake written there from it."""
        self.to_duckdb()
        started = time.perf_counter()
        for table in cdm_tables:
            name = f"cdm.{table}"
            if name not in self._in_delta:
                rows = self.state.con.sql(f"SELECT * FROM {name}").to_arrow_table()
                lake.write(self._delta_path(name), rows, mode="overwrite", schema_mode="overwrite")
                self._in_delta.add(name)
        self.seconds_moving += time.perf_counter() - started


def _visit_rollup(run: SparkBuild) -> None:
    """lib/cdm/build.py's visit_rollup on Spark: the state gets the RollupResult the DuckDB step gives."""
    run.state.rollup = spark_visits.rollup_visits(run._tables, "visit_input", "rollup")


# The Python steps that run their own SQL (DuckDB's, transpiled) on Spark, given the build
SPARK_CALLS: dict[str, Callable[[SparkBuild], None]] = {"visit_rollup": _visit_rollup}

_STEP_LINE = re.compile(r"^CDM build step \d+/\d+ '(\w+)' on (spark|duckdb):")


def engines_of(log_lines) -> dict[str, str]:
    """Step -> the engine that ran it, from the lines build_on_spark logs."""
    return dict(m.groups() for m in map(_STEP_LINE.match, log_lines) if m)


def steps_on_spark() -> list[str]:
    """The names of the steps of lib/cdm/steps.py that run on Spark."""
    return [s.name for s in STEPS if on_spark(s)]


def build_on_spark(state, work_dir: Path, memory_limit: str, threads: int):
    """lib/cdm/build.py's full build with its SQL on Spark; the report is the DuckDB build's, with a last
    step `publish_from_spark` (the CDM into DuckDB and Delta). The session is a local one started here
    and stopped at the end (its JVM holds the driver's heap), or, in a process that runs one already (a
    test's), a new session of it: its JVM, but temp views of its own, so no table an earlier build left
    can stand in for one this build has not written."""
    from pyspark.sql import SparkSession

    from rwe_assets.lib.spark import session

    started_here = SparkSession.getActiveSession() is None  # a caller's session (a test's) stays up
    spark = session.local_session(work_dir / "spark", driver_memory=memory_limit, cores=threads)
    own = spark if started_here else spark.newSession()
    try:
        return _steps(state, SparkBuild(state, own, work_dir / "spark" / "scratch"))
    finally:
        if started_here:
            spark.stop()


def _steps(state, run: SparkBuild):
    """The step table in order, each timed and logged with its engine, then the CDM in both places."""
    from rwe_assets.lib.cdm import build as cdm_build
    from rwe_assets.lib.cdm_spec import cdm_spec
    from rwe_assets.lib.genomics.cdm import GCDM_TABLES
    from rwe_assets.lib.vocabulary import VOCABULARY_TABLES

    timer = cdm_build._Timer()
    for number, step in enumerate(STEPS, 1):
        where = f"CDM build step {number}/{len(STEPS)} '{step.name}'"
        try:
            with timer.step(step.name):
                run.run(step, cdm_build._run_step)
        except Exception as error:
            error.add_note(f"in {where} on {run.engines.get(step.name, 'spark')} (lib/spark/build.py)")
            raise
        state.log(f"{where} on {run.engines[step.name]}: {timer.seconds[step.name]:.2f} s")
    cdm_tables = [t.name for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES] + list(GCDM_TABLES)
    with timer.step("publish_from_spark"):
        run.finish(cdm_tables)
    state.log(f"CDM build on Spark: {run.seconds_moving:.2f} s of it moving tables between the engines")
    return cdm_build._report(state, timer, state.rollup.merged_rows)
