"""A local SparkSession for the CDM build on Spark: tests and one-machine runs (a cluster gets its
session from its own launcher, spark-submit or Spark Connect, not from here).

pyspark is not a core dependency (extras dev and spark; it needs a Java runtime): it is imported when
a session is made. Settings mirror the DuckDB build's: UTC session time zone, timestamps without time
zone (OMOP datetimes are local wall-clock times, as in DuckDB's TIMESTAMP), bounded memory, every temp
file under the given work folder.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

# pyspark and Spark accept sizes such as 512m or 2g; the project's settings write 3GB
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt])i?b?\s*$", re.IGNORECASE)


# Tests on a few rows: compiling generated code costs more than it saves, and one partition is enough.
TINY_DATA = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


# Broadcast joins only from sizes measured at run time. The planner estimates a Parquet table by its
# compressed file size, scaled to the columns read, far below its size in memory: at 10k persons the
# cost step's distinct (source_system, event_key) of stg_cost was planned at 4.2 MB for 450k keys of
# 20 MB of characters, and broadcasting it ran the 3 GB driver heap out (issue 29). Adaptive execution
# still broadcasts a join side whose shuffle output it measured under 10 MB.
NO_PLANNED_BROADCAST = {
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.autoBroadcastJoinThreshold": "10MB",
}


def spark_memory(size: str) -> str:
    """A memory size in Spark's notation: '3GB' -> '3g', '512MiB' -> '512m'."""
    match = _SIZE.match(size)
    if match is None:
        raise ValueError(f"expected a memory size such as 2GB or 512m, found {size!r}")
    return f"{match.group(1)}{match.group(2).lower()}"


def local_session(
    work_dir: Path,
    *,
    driver_memory: str = "1GB",
    cores: int = 2,
    shuffle_partitions: int = 4,
    app_name: str = "rwe_assets-cdm",
    config: Mapping[str, str] | None = None,
):
    """A local[cores] SparkSession, no UI, `shuffle_partitions` partitions after a shuffle (Spark's
    200 would be 200 tiny tasks per join on a small build), Spark's scratch, warehouse and the JVM's
    temp folder under `work_dir`. The driver's heap is fixed when its JVM starts: a second call in the
    same process returns the running session with its first settings (stop it first to change them).
    `config`: further Spark settings, e.g. ``TINY_DATA`` for tests."""
    from pyspark.sql import SparkSession

    work_dir = Path(work_dir).resolve()
    for part in ("local", "warehouse", "tmp"):
        (work_dir / part).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run the same venv
    builder = SparkSession.builder.master(f"local[{int(cores)}]").appName(app_name)
    settings = {**_config(work_dir, spark_memory(driver_memory), shuffle_partitions), **(config or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _config(work_dir: Path, driver_memory: str, shuffle_partitions: int) -> dict[str, str]:
    return {
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(int(shuffle_partitions)),
        "spark.default.parallelism": str(int(shuffle_partitions)),
        "spark.local.dir": str(work_dir / "local"),
        "spark.sql.warehouse.dir": str(work_dir / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={work_dir / 'tmp'}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        # Parquet that deltalake and DuckDB read as they write it: INT64 microseconds, not INT96
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **NO_PLANNED_BROADCAST,
    }
