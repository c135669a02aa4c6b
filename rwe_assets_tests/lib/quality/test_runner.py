"""The runner is told by data how to run a check (catalogue.CHECK_KINDS), not by the text of its SQL:
change a check type's RunAs and the queries change, the counts do not."""

from __future__ import annotations

import datetime as dt

import pytest

from rwe_assets.lib.dqd_spec import applicable_checks, dqd_catalogue
from rwe_assets.lib.quality import catalogue, runner
from rwe_assets.lib.quality.catalogue import CHECK_KINDS, CheckKind, RunAs, scan_expressions
from rwe_assets.lib.quality.database import Database, NotApplicable
from rwe_assets.lib.quality.planner import check_types_with_templates, plan_check
from rwe_assets_tests.lib.quality.test_dqd import TODAY, clean_cdm


class CountingConnection:
    """Delegates to a DuckDB connection and keeps the text of every query executed."""

    def __init__(self, con):
        self.con, self.queries = con, []

    def execute(self, sql, params=None):
        self.queries.append(sql)
        return self.con.execute(sql, params)


def plans_of(con, check_name: str, table: str) -> list:
    db = Database.open(con, "cdm", "cdm", TODAY)
    chosen = [c for c in applicable_checks() if c.check_name == check_name and c.table == table]
    plans = [plan_check(c, db) for c in chosen]
    assert len(plans) > 3 and not any(isinstance(p, NotApplicable) for p in plans)
    return plans


@pytest.fixture
def fresh_caches():
    scan_expressions.cache_clear()
    yield
    scan_expressions.cache_clear()


def test_every_check_type_says_how_it_runs():
    catalogue_types = {t.name for t in dqd_catalogue().check_types}
    assert set(CHECK_KINDS) == catalogue_types == set(check_types_with_templates())
    for name, kind in CHECK_KINDS.items():
        if kind.run_as is RunAs.SCAN:  # a SCAN template has the shape the runner merges
            violated, denominator = scan_expressions(name)
            assert "{table}" not in violated + denominator


def test_scan_checks_of_a_table_share_one_query_and_alone_ones_do_not(monkeypatch, fresh_caches):
    con = clean_cdm()
    plans = plans_of(con, "isRequired", "person")
    merged = CountingConnection(con)
    outcomes = runner.execute_all(merged, plans)
    assert len(merged.queries) == 1

    # the same template, declared ALONE: one query per check, the same counts
    monkeypatch.setitem(CHECK_KINDS, "isRequired", CheckKind(RunAs.ALONE, "records in the table"))
    alone = CountingConnection(con)
    assert [(o.violated, o.denominator) for o in runner.execute_all(alone, plans)] == [
        (o.violated, o.denominator) for o in outcomes
    ]
    assert len(alone.queries) == len(plans)
    assert all(q.startswith("-- isRequired") for q in alone.queries)


def test_batch_checks_run_in_one_union(monkeypatch):
    con = clean_cdm()
    plans = plans_of(con, "cdmField", "person")
    batched = CountingConnection(con)
    outcomes = runner.execute_all(batched, plans)
    assert len(batched.queries) == 1 and "UNION ALL" in batched.queries[0]

    monkeypatch.setitem(CHECK_KINDS, "cdmField", CheckKind(RunAs.ALONE, "field to look for"))
    alone = CountingConnection(con)
    counted = [(o.violated, o.denominator) for o in runner.execute_all(alone, plans)]
    assert counted == [(o.violated, o.denominator) for o in outcomes]
    assert len(alone.queries) == len(plans)


def test_a_scan_declared_template_of_another_shape_is_refused(monkeypatch, fresh_caches):
    """Declaring a GROUP BY check SCAN is an error, not a silent fall back to one query each."""
    monkeypatch.setitem(CHECK_KINDS, "isPrimaryKey", CheckKind(RunAs.SCAN, "records in the table"))
    with pytest.raises(ValueError, match="isPrimaryKey: not a SCAN check type"):
        scan_expressions("isPrimaryKey")
    assert catalogue.run_as("isPrimaryKey") is RunAs.SCAN


def test_a_concept_level_bound_runs_alone_although_its_type_is_scan():
    """Its table is a subquery with parameters: it cannot share a scan (Plan.alone)."""
    con = clean_cdm()
    db = Database.open(con, "cdm", "cdm", dt.date(2024, 6, 1))
    check = next(iter(catalogue.concept_value_checks()))
    plan = plan_check(check, db)
    assert CHECK_KINDS[check.check_name].run_as is RunAs.SCAN and plan.run_as is RunAs.ALONE
