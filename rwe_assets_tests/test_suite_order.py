"""The suite's own scheduling: slow tests start first, and `make test` lets an idle worker take queued
tests from a busy one, so no slow test starts while the other worker has nothing left to run."""

from __future__ import annotations

import re

from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import pytest_collection_modifyitems


class _Item:
    def __init__(self, name: str, slow: bool):
        self.name, self.slow = name, slow

    def get_closest_marker(self, name: str):
        return object() if self.slow and name == "slow" else None


def test_slow_tests_are_collected_first_each_group_in_its_own_order():
    items = [_Item("a", False), _Item("b", True), _Item("c", False), _Item("d", True), _Item("e", False)]
    pytest_collection_modifyitems(None, items)
    assert [item.name for item in items] == ["b", "d", "a", "c", "e"]


def test_make_test_runs_two_workers_that_steal_queued_tests():
    [line] = re.findall(r"^\t\$\(BIN\)/pytest .*$", (REPO_DIR / "Makefile").read_text(), re.MULTILINE)
    assert "-n 2" in line and "--dist worksteal" in line, line
