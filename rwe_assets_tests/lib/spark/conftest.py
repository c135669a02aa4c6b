"""One local SparkSession for every Spark test of a test process (the JVM start is most of a Spark
test's time), stopped at the end of the session.

pyspark is a dev dependency and CI machines have Java 17: where either is missing the Spark tests are
skipped on a developer's machine, and fail in CI (CI set, as CI services set it), so a CI image that
lost Java cannot pass the suite without the Spark engine's tests."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def spark_missing() -> str | None:
    """Why no SparkSession can start here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (a dev dependency: pip install -e '.[dev]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "pyspark needs a Java runtime (Java 17: apt-get install openjdk-17-jre-headless)"
    return None


def in_ci(environ=os.environ) -> bool:
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_spark(environ=os.environ) -> None:
    """Return when a SparkSession can start; else fail in CI, skip elsewhere."""
    missing = spark_missing()
    if missing is None:
        return
    if in_ci(environ):
        pytest.fail(f"CI runs the Spark engine's tests: {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    require_spark()
    from rwe_assets.lib.spark import session

    work = tmp_path_factory.mktemp("spark")
    spark = session.local_session(work, driver_memory="1GB", shuffle_partitions=1, config=session.TINY_DATA)
    yield spark
    spark.stop()
