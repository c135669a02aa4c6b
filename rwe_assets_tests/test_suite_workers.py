"""The suite's own scheduling, continued (conftest.py): the tests on a SparkSession lead the collection,
ahead of the slow tests, so that one worker of `make test` runs them all on one JVM; and each worker
runs DuckDB on its share of the cores."""

from __future__ import annotations

import os

import pytest

from rwe_assets_tests.conftest import pytest_collection_modifyitems, pytest_configure


class _Item:
    def __init__(self, name: str, slow: bool, fixtures: tuple[str, ...] = ()):
        self.name, self.slow, self.fixturenames = name, slow, fixtures

    def get_closest_marker(self, name: str):
        return object() if self.slow and name == "slow" else None


def test_tests_on_a_spark_session_come_first_slow_or_not_then_the_slow_ones():
    items = [
        _Item("a", False),
        _Item("b", True),
        _Item("c", False, ("tmp_path", "spark")),
        _Item("d", True, ("spark",)),
        _Item("e", False, ("sparkle",)),
        _Item("f", False, ("spark",)),
    ]
    pytest_collection_modifyitems(None, items)
    assert [item.name for item in items] == ["c", "d", "f", "b", "a", "e"]


def test_the_spark_group_is_the_head_of_the_real_collection(request):
    """Real items name their fixtures as the fake ones do: every collected test using `spark`
    (here, in this run) sits before any that does not."""
    items = request.session.items
    ranks = ["spark" not in item.fixturenames for item in items]
    assert ranks == sorted(ranks)


@pytest.mark.parametrize(
    ("cores", "workers", "preset", "threads"),
    [(2, "2", None, "1"), (8, "2", None, "4"), (2, None, None, "2"), (1, "2", None, "1"), (2, "2", "3", "3")],
)
def test_each_worker_runs_duckdb_on_its_share_of_the_cores(monkeypatch, cores, workers, preset, threads):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    for name, value in (("PYTEST_XDIST_WORKER_COUNT", workers), ("RWE_DUCKDB_THREADS", preset)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    pytest_configure(None)
    assert os.environ["RWE_DUCKDB_THREADS"] == threads


def test_the_xdist_controller_leaves_the_count_to_its_workers(monkeypatch):
    """The controller configures first and its workers inherit its environment: a count it set (its
    own share, all the cores) would be the workers' too."""

    class Controller:
        def getoption(self, name, default=None):
            return 2 if name == "numprocesses" else default

    monkeypatch.delenv("RWE_DUCKDB_THREADS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    pytest_configure(Controller())
    assert "RWE_DUCKDB_THREADS" not in os.environ
