"""CDM assets: the OMOP CDM v5.4 tables, the vocabulary and the build results, all written by one
DuckDB build (lib/cdm/build.py) into data/warehouse/build.duckdb, in one process. The build's steps
(lib/cdm/steps.py) say which tables each reads and writes; the assets' lineage is derived from them,
and each asset's metadata names the steps that wrote it and their seconds."""

import graphlib

import dagster as dg
import duckdb

from rwe_assets.defs.cdm.lineage import column_lineage, column_schema
from rwe_assets.defs.linkage.assets import CROSSWALK
from rwe_assets.defs.staging.assets import staging_key
from rwe_assets.lib.cdm import steps
from rwe_assets.lib.cdm.build import EVENT_TABLES, CdmBuildReport, build_cdm, reconcile_persons
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.genomics.cdm import GCDM_TABLES, gcdm_spec
from rwe_assets.lib.publish import BUILD
from rwe_assets.lib.vocabulary import VOCABULARY_TABLES, ensure_vocabulary_store
from rwe_assets.resources import RweConfig

RESULT_TABLES = {
    "reconciliation": "Staging -> CDM row accounting: staged = written - extra (one-to-many maps) + merged.",
    "unmapped_codes": "Source codes that map to no standard concept (concept_id 0), ranked by rows and persons.",
    "mapping_summary": "Rows per CDM table, source system and mapping rule (maps_to, source_to_concept_map, ...).",
    "build_inputs": "Every ingested file (source, path, sha256) the build read: the CDM's provenance.",
    "linkage_metrics": "Linkage quality (precision, recall, F1 vs ground truth where known), match rates per "
    "source pair and the match-score histogram, copied from lake/linkage/metrics.",
    "person_exclusion": "Linked persons PERSON leaves out and why (NO_YEAR_OF_BIRTH, NO_OBSERVATION_PERIOD); "
    "their rows in every CDM table are counted as excluded in results.reconciliation.",
    "vocabulary": "The vocabulary the build used: digest of its files, version, sizes, demo-subset warning.",
    "vocabulary_change": "Per table and source code, what a changed vocabulary did to the mapping since the "
    "published database: newly mapped, newly unmapped, concept changed, moved between tables.",
}
VOCABULARY_STORE = dg.AssetKey(["vocab", "store"])
BUILD_DB = f"data/warehouse/{BUILD}"
RECONCILIATION_CHECK = "cdm_rows_reconcile"
RECONCILED_TABLES = ("person", "visit_occurrence", "visit_detail", *EVENT_TABLES)
CDM_TABLES = [t.name for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES]  # vocabulary aside


def cdm_key(table: str) -> dg.AssetKey:
    layer = "vocab" if table in VOCABULARY_TABLES else "cdm"
    return dg.AssetKey([layer, table])


def _built_tables() -> list:
    """Every table the build writes: the OMOP v5.4 tables (vocabulary included) and the G-CDM ones."""
    return [*cdm_spec().tables, *(gcdm_spec().table(name) for name in GCDM_TABLES)]


def _yield_order() -> list[str]:
    """cdm.<table> and results.<table> of every asset, each after the tables that feed it (the order a
    multi-asset must yield them in)."""
    names = [f"cdm.{t.name}" for t in _built_tables()] + [f"results.{name}" for name in RESULT_TABLES]
    graph = graphlib.TopologicalSorter()
    for name in sorted(names, key=_first_step):
        vocabulary = name.removeprefix("cdm.") in VOCABULARY_TABLES
        feeds = set() if vocabulary else steps.asset_inputs(name)[0]
        graph.add(name, *sorted(feeds & set(names)))
    return list(graph.static_order())


def _first_step(table: str) -> int:
    found = [n for n, step in enumerate(steps.STEPS) if table in step.writes]
    return found[0] if found else -1


def _input_key(name: str) -> dg.AssetKey:
    """A table named as lib/cdm/steps.py names it -> its asset key."""
    if name == "crosswalk_all":
        return CROSSWALK
    if name.startswith("stg_"):
        return staging_key(name.removeprefix("stg_").removeprefix("genomics_"))
    layer, table = name.split(".")
    return cdm_key(table) if layer == "cdm" else dg.AssetKey([layer, table])


def _deps(table: str) -> list[dg.AssetKey]:
    """What feeds `table` (cdm.<name> or results.<name>) by the step table; a table no step fills comes
    with the vocabulary store the build starts from."""
    keys = {_input_key(name) for name in steps.asset_inputs(table)[0]}
    if not steps.writers(table) or table == "cdm.cdm_source":
        keys.add(VOCABULARY_STORE)
    return sorted(keys, key=str)


def _step_metadata(table: str, seconds: dict[str, float]) -> dict:
    """The steps that wrote `table`, their seconds, and fix-ups left out of its lineage (no circle)."""
    names = [step.name for step in steps.writers(table)]
    if not names:
        return {}
    metadata = {
        "build_steps": ", ".join(names),
        "build_seconds": round(sum(seconds.get(n, 0.0) for n in names), 3),
    }
    _, fixed_up = steps.asset_inputs(table)
    if fixed_up:
        metadata["changed_after_its_inputs_by"] = ", ".join(sorted(fixed_up))
    return metadata


def _specs() -> list[dg.AssetSpec]:
    specs = []
    for table in _built_tables():
        vocabulary = table.name in VOCABULARY_TABLES
        specs.append(
            dg.AssetSpec(
                cdm_key(table.name),
                group_name="vocab" if vocabulary else "cdm",
                kinds={"duckdb"},
                deps=[VOCABULARY_STORE] if vocabulary else _deps(f"cdm.{table.name}"),
                description=(table.description or f"OMOP CDM v5.4 table {table.name}")[:1000],
                code_version="cdm-1",
                metadata={"duckdb_table": f"cdm.{table.name}", "database": BUILD_DB},
            )
        )
    for name, description in RESULT_TABLES.items():
        specs.append(
            dg.AssetSpec(
                dg.AssetKey(["results", name]),
                group_name="results",
                kinds={"duckdb"},
                deps=_deps(f"results.{name}"),
                description=description,
                code_version="cdm-1",
                metadata={"duckdb_table": f"results.{name}", "database": BUILD_DB},
            )
        )
    return specs


_CHECKS = [
    dg.AssetCheckSpec(
        RECONCILIATION_CHECK,
        asset=cdm_key(table),
        blocking=True,
        description="Every staged row is in the CDM, or merged by a documented rule (linkage, visit rollup).",
    )
    for table in RECONCILED_TABLES
]


@dg.asset(key=VOCABULARY_STORE, group_name="vocab", kinds={"duckdb"}, pool="duckdb_build")
def vocabulary_store(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """The vocabulary files of RWE_VOCAB_DIR loaded into a DuckDB store named by their content digest;
    loaded again only when the files change. The CDM build copies its vocabulary tables from it."""
    settings = rwe.settings()
    store = ensure_vocabulary_store(settings.vocab_dir, settings.warehouse_dir / "vocabulary")
    context.log.info(f"vocabulary {store.version}: {'loaded' if store.created else 'unchanged, reused'}")
    return dg.MaterializeResult(
        metadata={
            "digest": store.digest,
            "vocabulary_version": store.version or "unknown",
            "loaded": store.created,
            **{f"rows_{table}": count for table, count in store.row_counts.items()},
        },
        data_version=dg.DataVersion(store.digest),
    )


@dg.multi_asset(name="cdm_build", specs=_specs(), check_specs=_CHECKS, pool="duckdb_build")
def cdm_build(context: dg.AssetExecutionContext, rwe: RweConfig):
    """Build the CDM database from staging, the vocabulary and the crosswalk, step by step
    (lib/cdm/steps.py), in one process: each step is logged with its seconds, and a failure names its
    step. Full, incremental (only the persons staging changed, lib/cdm/incremental.py) or reused, by
    the rule of docs/operations.md "Incremental refresh"; each table's metadata says which and why. A
    rerun after a failed step starts at that step when the inputs are the same (lib/cdm/resume.py):
    `cdm_build_resumed_from` names it."""
    settings = rwe.settings()
    report = build_cdm(
        settings.lake_dir,
        settings.vocab_dir,
        settings.warehouse_dir,
        memory_limit=settings.cdm_memory_limit,
        threads=settings.duckdb_threads,
        log=context.log.info,
        engine=settings.cdm_engine,
    )
    if report.reused:  # the last build read exactly these inputs (lib/cdm/reuse.py): its file is kept
        context.log.info(f"inputs unchanged since the last build: kept {report.path}")
    else:
        context.log.info(
            f"built {report.path} ({report.mode}: {report.mode_reason}): {sum(report.row_counts.values())} CDM rows"
        )
    if report.resumed_from:  # a failed build of the same inputs stopped there (lib/cdm/resume.py)
        context.log.info(f"resumed at step '{report.resumed_from}': the steps before it were kept")
    if report.vocabulary_warning:
        context.log.warning(report.vocabulary_warning)
    step_seconds = {step: round(seconds, 3) for step, seconds in report.step_seconds.items()}
    unmapped = _unmapped_share_pct(report.path)
    tables = {f"cdm.{table.name}": table for table in _built_tables()}
    for name in _yield_order():
        if name in tables:
            metadata = _table_metadata(tables[name], report, step_seconds, unmapped)
            yield dg.MaterializeResult(asset_key=cdm_key(tables[name].name), metadata=metadata)
            continue
        metadata = _step_metadata(name, step_seconds)
        if name == "results.unmapped_codes":
            metadata["unmapped_rows"] = report.unmapped_rows
        if name == "results.reconciliation":
            metadata["build_step_seconds"] = dg.MetadataValue.json(step_seconds)
        yield dg.MaterializeResult(asset_key=dg.AssetKey(name.split(".")), metadata=metadata)
    for table in RECONCILED_TABLES:
        yield _reconciliation_check(table, report, settings.lake_dir)


def _table_metadata(table, report: CdmBuildReport, step_seconds: dict, unmapped: dict) -> dict:
    count = report.row_counts.get(table.name)
    metadata = {
        "vocabulary_version": report.vocabulary_version or "unknown",
        "dagster/column_schema": column_schema(table),
        "reused_last_build": report.reused,
        "cdm_build_mode": report.mode,
        "cdm_build_reason": report.mode_reason,
        "cdm_build_resumed_from": report.resumed_from or "",  # '' : the build ran every step
        **({"persons_rebuilt": report.persons_rebuilt} if report.persons_rebuilt is not None else {}),
        **_step_metadata(f"cdm.{table.name}", step_seconds),
    }
    lineage = column_lineage(table)
    if lineage is not None:
        metadata["dagster/column_lineage"] = lineage
    if count is not None:
        metadata["dagster/row_count"] = count
    if table.name in unmapped:
        metadata["unmapped_share_pct"] = unmapped[table.name]
    return metadata


def _unmapped_share_pct(path) -> dict[str, float]:
    """Percent of each event table's rows with concept_id 0 (plotted run over run in the UI)."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT cdm_table, round(100.0 * sum(rows) FILTER (WHERE mapping_rule = 'unmapped') / sum(rows), 3) "
            "FROM results.mapping_summary GROUP BY cdm_table"
        ).fetchall()
    return {table: float(share or 0.0) for table, share in rows}


def _reconciliation_check(table: str, report: CdmBuildReport, lake_dir) -> dg.AssetCheckResult:
    if table == "person":  # read from the written file and the lake, not the build's own arithmetic
        row = reconcile_persons(report.path, lake_dir)
    else:
        (row,) = [r for r in report.reconciliation if table in r.cdm_table.split("+")]
    return dg.AssetCheckResult(
        asset_key=cdm_key(table),
        check_name=RECONCILIATION_CHECK,
        passed=row.unaccounted == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "staged_table": row.staged_table,
            "staged_rows": row.staged_rows,
            "cdm_rows": row.cdm_rows,
            "merged_rows": row.merged_rows,
            "extra_rows_from_one_to_many_maps": row.extra_rows,
            "excluded_rows": row.excluded_rows,
            "excluded_by_reason": dg.MetadataValue.json(dict(row.excluded_reasons)),
            "rows_unaccounted": row.unaccounted,
        },
    )


cdm_assets = [vocabulary_store, cdm_build]
