"""The suite's own scheduling, continued (conftest.py): the tests on a SparkSession lead the collection,
ahead of the slow tests, so that one worker of `make test` runs them all on one JVM."""

from __future__ import annotations

from rwe_assets_tests.conftest import pytest_collection_modifyitems


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
