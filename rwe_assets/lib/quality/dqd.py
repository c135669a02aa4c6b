"""OHDSI Data Quality Dashboard (DQD) v5.4 checks on the project's DuckDB OMOP CDM, generated from the
packaged DQD catalogue (``rwe_assets.lib.dqd_spec.dqd_catalogue``): the public API and the command line.

This is an independent implementation: DQD's own SQL is not shipped; every check type has one SQL
template of ours in ``rwe_assets/lib/sql/quality/<checkName>.sql``, written from the check descriptions.
A template returns one row, ``num_violated_rows`` and ``num_denominator_rows``; the code substitutes
identifiers (quoted, schema-qualified names) and passes values as DuckDB named parameters. One check =
one applicable (check type, table, field, concept) of the catalogue; semantics in docs/data-quality.md.

The work is split by job, each module under ~500 lines:

- ``catalogue``: which checks exist and how each check type runs and counts (``CHECK_KINDS``, data the
  runner reads), templates, checks of the vocabulary alone, checks that cannot fail;
- ``database`` and ``planner``: what the checked database holds, and a check -> its query or the reason
  it does not apply (catalogue bounds translated);
- ``runner``: planning and executing every check (merged scans, UNION ALL batches, single queries),
  reusing the vocabulary's recorded outcomes;
- ``results``: ``CheckResult``, ``results.dq_check_results``, the summary and pass rates;
- this module: the public names, re-exported, and ``python -m rwe_assets.lib.quality.dqd``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence

import duckdb

from rwe_assets.lib.quality.catalogue import (
    ADJACENT_DAYS,
    CHECK_KINDS,
    DEATH_GRACE_DAYS,
    GENDER_CONCEPTS,
    NO_UNIT,
    VISIT_WINDOW_DAYS,
    RunAs,
    cannot_fail_reason,
    check_id,
    concept_value_checks,
    load_template,
    vocabulary_checks,
)
from rwe_assets.lib.quality.database import NotApplicable
from rwe_assets.lib.quality.gate import STRUCTURAL_CHECKS
from rwe_assets.lib.quality.planner import check_types_with_templates, literal, translate_bound
from rwe_assets.lib.quality.results import (
    RESULT_COLUMNS,
    RESULTS_TABLE,
    CheckResult,
    summarize,
    write_results,
)
from rwe_assets.lib.quality.runner import (
    VOCABULARY_RESULTS,
    new_run_id,
    record_vocabulary_checks,
    recorded_vocabulary_outcomes,
    run_checks,
)

__all__ = [
    "ADJACENT_DAYS",
    "CHECK_KINDS",
    "DEATH_GRACE_DAYS",
    "FAIL_ON",
    "GENDER_CONCEPTS",
    "NO_UNIT",
    "RESULTS_TABLE",
    "RESULT_COLUMNS",
    "VISIT_WINDOW_DAYS",
    "VOCABULARY_RESULTS",
    "CheckResult",
    "NotApplicable",
    "RunAs",
    "cannot_fail_reason",
    "check_id",
    "check_types_with_templates",
    "concept_value_checks",
    "exit_code",
    "load_template",
    "main",
    "new_run_id",
    "record_vocabulary_checks",
    "recorded_vocabulary_outcomes",
    "run_checks",
    "summarize",
    "translate_bound",
    "vocabulary_checks",
    "write_results",
]


FAIL_ON = ("any", "blocking", "never")
"""--fail-on policies of the command (see exit_code)."""


def exit_code(results: Iterable[CheckResult], fail_on: str = "any") -> int:
    """The command's exit status: 1 when a check the policy counts failed (its share of violated rows
    is above its threshold, so only applicable checks) or errored (its query failed), else 0.
    ``any`` counts every check, those that cannot fail included (one failing means the database was
    not built from the spec); ``blocking`` only the check types that stop publishing
    (``gate.STRUCTURAL_CHECKS``); ``never`` reports without failing."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on: expected one of {FAIL_ON}, found {fail_on!r}")
    counted = (lambda r: True) if fail_on == "any" else (lambda r: r.check_name in STRUCTURAL_CHECKS)
    bad = fail_on != "never" and any((r.failed or r.is_error) and counted(r) for r in results)
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rwe_assets.lib.quality.dqd WAREHOUSE.duckdb``: run every check against a CDM file
    opened read-only (results kept in memory unless --results-db), print the summary and failures and
    exit 1 when a check failed (--fail-on, see exit_code)."""
    parser = argparse.ArgumentParser(prog="python -m rwe_assets.lib.quality.dqd", description=main.__doc__)
    parser.add_argument("database", help="DuckDB file holding the CDM (opened read-only)")
    parser.add_argument("--schema", default="cdm", help="CDM schema in that file (default: cdm)")
    parser.add_argument("--results-db", help="DuckDB file to append results.dq_check_results to")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    parser.add_argument("--json", action="store_true", help="print the summary and failures as JSON")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="any",
        help="exit 1 when any check fails (default), only a publish-blocking one, or never",
    )
    args = parser.parse_args(argv)

    with duckdb.connect(args.results_db or ":memory:") as con:
        if args.threads:
            con.execute(f"SET threads = {int(args.threads)}")
        con.execute(f"ATTACH {literal(args.database)} AS dqd_source (READ_ONLY)")
        start = time.perf_counter()
        results = run_checks(con, schema=f"dqd_source.{args.schema}")
        seconds = time.perf_counter() - start
    (_print_json if args.json else _print_text)(results, seconds)
    return exit_code(results, args.fail_on)


def _print_json(results: Sequence[CheckResult], seconds: float) -> None:
    summary = summarize(results)
    out = {
        "seconds": round(seconds, 2),
        **{k: v for k, v in summary.items() if not k.startswith("by_")},
        "failures": [
            {
                "check_id": r.check_id,
                "status": r.status,
                "num_violated_rows": r.num_violated_rows,
                "num_denominator_rows": r.num_denominator_rows,
                "pct_violated_rows": r.pct_violated_rows,
                "threshold_pct": r.threshold_pct,
                "cannot_fail_reason": r.cannot_fail_reason,
                "error_message": r.error_message,
            }
            for r in results
            if r.failed or r.is_error
        ],
    }
    json.dump(out, sys.stdout, indent=2)
    print()


def _print_text(results: Sequence[CheckResult], seconds: float) -> None:
    summary, scored = summarize(results), summarize(r for r in results if r.can_fail)
    rate, dqd_rate = summary["pass_rate"], summary["dqd_pass_rate"]
    print(
        f"{summary['total']} checks in {seconds:.1f}s: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['errors']} errors, {summary['not_applicable']} not applicable"
    )
    print(
        f"checks that can fail: {scored['total']} ({scored['total'] - scored['not_applicable']} applicable); "
        f"pass rate {_percent(rate)} (over all applicable checks, as DQD reports it: {_percent(dqd_rate)})"
    )
    cannot = summary["cannot_fail_checks"]
    print(
        f"checks that cannot fail on a CDM built from the spec: {cannot['total']}, {cannot['failed']} failed"
    )
    for reason, count in cannot["by_reason"].items():
        print(f"  {count:5} {reason}")
    for r in results:
        if r.failed or r.is_error:
            pct = (
                "" if r.pct_violated_rows is None else f" ({r.pct_violated_rows:.2%} > {r.threshold_pct:g}%)"
            )
            detail = r.error_message if r.is_error else f"{r.num_violated_rows}/{r.num_denominator_rows}{pct}"
            print(f"  {r.status:5} {r.check_id}: {detail}")


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


if __name__ == "__main__":
    sys.exit(main())
