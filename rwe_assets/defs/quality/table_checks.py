"""Asset checks on every CDM table, generated from the DQD catalogue's results and the build history.

`dqd_table_checks` reads the latest run of results.dq_check_results (one row per catalogue check, see
lib/quality/dqd.py; the latest is the run that started last, gate.latest_run_id, as for the publish
gate) and reports two checks per CDM table, so a data engineer sees on each table what failed:

* `dqd_structural` (error severity): the table's structural checks (table, fields, types, primary
  key, foreign keys, required fields: lib/quality/gate.py) all pass. A failure stops publishing:
  publish/rwe_duckdb re-reads the same results and refuses the build (lib/publish.py). These checks
  run after the DQD suite, so Dagster cannot make them block the CDM tables they sit on (a cycle);
* `dqd_values` (warning): every other check (plausible values and dates, concept domains and
  standard concepts, completeness), each against its DQD threshold.

`cdm_monitoring` compares each event table with its previous materialization (Dagster's history):
`row_count_not_dropped` warns when a table lost more than DROP_WARNING of its rows; `unmapped_share_stable`
warns when its share of concept_id 0 rose by more than SPIKE_WARNING (percentage points). Both values
are numeric metadata of the CDM assets, so the UI plots them run over run.
"""

import dagster as dg
import duckdb

from rwe_assets.defs.cdm.assets import CDM_TABLES, cdm_key
from rwe_assets.defs.quality.assets import DQ_RESULTS, build_database
from rwe_assets.lib.cdm.build import EVENT_TABLES
from rwe_assets.lib.quality.gate import RESULTS, STRUCTURAL_CHECKS, latest_run_id
from rwe_assets.resources import RweConfig

STRUCTURAL, VALUES = "dqd_structural", "dqd_values"
DROP_WARNING = 0.10
SPIKE_WARNING = 2.0


def _dqd_specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for table in CDM_TABLES:
        specs += [
            dg.AssetCheckSpec(
                STRUCTURAL,
                asset=cdm_key(table),
                additional_deps=[DQ_RESULTS],
                description=f"DQD structural checks of {table} pass ({', '.join(STRUCTURAL_CHECKS)}).",
            ),
            dg.AssetCheckSpec(
                VALUES,
                asset=cdm_key(table),
                additional_deps=[DQ_RESULTS],
                description=f"DQD value, date, concept and completeness checks of {table} within thresholds.",
            ),
        ]
    return specs


@dg.multi_asset_check(specs=_dqd_specs(), name="dqd_table_checks", pool="duckdb_build")
def dqd_table_checks(rwe: RweConfig):
    with build_database(rwe).get_connection() as con:
        by_table = latest_outcomes(con)
    for table in CDM_TABLES:
        for name, structural in ((STRUCTURAL, True), (VALUES, False)):
            applicable, failed = by_table.get((table.lower(), structural), (0, []))
            yield dg.AssetCheckResult(
                asset_key=cdm_key(table),
                check_name=name,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR if structural else dg.AssetCheckSeverity.WARN,
                metadata={
                    "applicable_checks": applicable,
                    "failed_checks": len(failed),
                    "failed": dg.MetadataValue.md("\n".join(f"- {c}" for c in failed) or "none"),
                },
            )


def latest_outcomes(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, bool], tuple[int, list[str]]]:
    """(table, structural) -> (applicable checks, ids of the failed or errored ones) in the latest DQD
    run, the same run the publish gate reads (gate.latest_run_id)."""
    rows = con.execute(
        f"""
        SELECT cdm_table, check_name IN (SELECT unnest($structural)) AS structural,
               count(*) FILTER (WHERE NOT not_applicable) AS applicable,
               list(check_id ORDER BY check_id) FILTER (WHERE failed OR is_error) AS failed
        FROM {RESULTS}
        WHERE run_id = $run
        GROUP BY ALL
        """,
        {"structural": list(STRUCTURAL_CHECKS), "run": latest_run_id(con)},
    ).fetchall()
    return {(table, structural): (applicable, failed or []) for table, structural, applicable, failed in rows}


def _monitoring_specs() -> list[dg.AssetCheckSpec]:
    return [
        spec
        for table in EVENT_TABLES
        for spec in (
            dg.AssetCheckSpec(
                "row_count_not_dropped",
                asset=cdm_key(table),
                description=f"Rows did not fall by more than {DROP_WARNING:.0%} since the previous build.",
            ),
            dg.AssetCheckSpec(
                "unmapped_share_stable",
                asset=cdm_key(table),
                description=f"Share of concept_id 0 rose by at most {SPIKE_WARNING} points since the previous build.",
            ),
        )
    ]


@dg.multi_asset_check(specs=_monitoring_specs(), name="cdm_monitoring")
def cdm_monitoring(context: dg.AssetCheckExecutionContext):
    for table in EVENT_TABLES:
        current, previous = _last_two(context.instance, cdm_key(table))
        rows, before = current.get("dagster/row_count"), previous.get("dagster/row_count")
        dropped = before is not None and rows is not None and rows < before * (1 - DROP_WARNING)
        yield _warning(table, "row_count_not_dropped", not dropped, {"rows": rows, "previous_rows": before})
        share, share_before = current.get("unmapped_share_pct"), previous.get("unmapped_share_pct")
        spiked = share is not None and share_before is not None and share - share_before > SPIKE_WARNING
        yield _warning(
            table,
            "unmapped_share_stable",
            not spiked,
            {"unmapped_pct": share, "previous_unmapped_pct": share_before},
        )


def _last_two(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[dict, dict]:
    """Numeric metadata of the latest two materializations of `key` (empty dicts where missing)."""
    records = instance.fetch_materializations(key, limit=2).records
    values = [
        {k: v.value for k, v in r.asset_materialization.metadata.items() if isinstance(v.value, int | float)}
        for r in records
        if r.asset_materialization
    ]
    values += [{}, {}]
    return values[0], values[1]


def _warning(table: str, name: str, passed: bool, values: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=cdm_key(table),
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: v for k, v in values.items() if v is not None},
    )


table_checks = [dqd_table_checks, cdm_monitoring]
