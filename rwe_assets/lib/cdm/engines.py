"""Where the CDM build's steps run: DuckDB (the default) or Spark (lib/spark/build.py: SQL steps,
the visit rollup, observation periods and eras in local or cluster Spark; the other Python steps and
the vocabulary on DuckDB). A Spark build is always a full build and is not resumable from a failed
step."""

from __future__ import annotations

from collections.abc import Callable

ENGINES = ("duckdb", "spark")


def check(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"CDM engine: expected one of {', '.join(ENGINES)}, found {engine!r}")


def run_on(engine: str, duckdb_build: Callable[[], object], state, settings: tuple[str, int]):
    """The report of the steps run on `engine`: `duckdb_build()`, or the Spark build of `state`."""
    if engine == "duckdb":
        return duckdb_build()
    from rwe_assets.lib.spark.build import build_on_spark  # pyspark is optional: imported when chosen

    return build_on_spark(state, state.final.parent, *settings)
