"""Staging layer assets: the canonical typed tables, staged from the raw layer in one step (only the new
batches and what they touch when the fallback rule allows: lib/staging/incremental.py)."""

import dagster as dg

from rwe_assets.defs.raw.assets import raw_key
from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import genomics_sources, stage_genomics_sources
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.staging.build import StagingReport, build_staging, staging_connection
from rwe_assets.lib.staging.model import TABLES
from rwe_assets.resources import RweConfig

RECONCILIATION_CHECK = "staging_rows_reconcile"


def staging_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", table])


def build_staging_assets(registry: SourceRegistry | None = None) -> dg.AssetsDefinition:
    registry = registry or load_registry()
    upstream = [
        raw_key(source.name, entity)
        for source in registry
        if source.staging_profile
        for entity in source.entity_names
    ]
    canonical = [
        dg.AssetSpec(
            key=staging_key(table.name),
            group_name="staging",
            kinds={"delta", "duckdb"},
            deps=upstream,
            description=table.description,
            code_version="staging-1",
            tags={"layer": "staging"},
        )
        for table in TABLES
    ]
    checks = [
        dg.AssetCheckSpec(
            RECONCILIATION_CHECK,
            asset=spec.key,
            blocking=True,
            description="Per source and raw entity: raw rows + fan-out = staged + quarantined + merged versions "
            "+ retired records.",
        )
        for spec in canonical
    ]
    specs = canonical + _genomics_specs(registry, upstream)

    @dg.multi_asset(name="staging", specs=specs, check_specs=checks, pool="lake_staging")
    def _staging(context: dg.AssetExecutionContext, rwe: RweConfig):
        """Stage the current raw files into every canonical staging table (lib/staging/build.py),
        incrementally or in full (the metadata says which and why)."""
        settings = rwe.settings()
        con = staging_connection(settings.staging_memory_limit, settings.duckdb_threads)
        report = build_staging(settings.lake_dir, registry, con)
        for table in TABLES:
            yield _materialization(settings.lake_dir, table.name, report)
            yield _reconciliation(table.name, report)
        yield from _stage_genomics(settings.lake_dir, registry)

    return _staging


GENOMICS_TABLES = {
    "variant": "One row per (VCF record, sample, ALT allele) with a non-reference genotype: multi-allelic "
    "sites split, alleles trimmed, zygosity, filters and parsed annotations (lib/genomics/staging.py).",
    "specimen": "One row per lab sample of the manifest: specimen type and date, test, genome build.",
}


def _genomics_specs(registry: SourceRegistry, upstream: list[dg.AssetKey]) -> list[dg.AssetSpec]:
    if not genomics_sources(registry):
        return []
    return [
        dg.AssetSpec(
            key=staging_key(name),
            group_name="staging",
            kinds={"delta", "cyvcf2"},
            deps=upstream,
            description=description,
            code_version="staging-genomics-1",
            tags={"layer": "staging"},
        )
        for name, description in GENOMICS_TABLES.items()
    ]


def _stage_genomics(lake_dir, registry: SourceRegistry):
    """Variants and specimens of the genomics source once it has landed (0 rows before); the counts
    reconcile inside stage_genomics (it raises when raw calls != staged + quarantined)."""
    for report in stage_genomics_sources(lake_dir, registry).values():
        counts = {name: (0, 0) for name in GENOMICS_TABLES}
        if report is not None:
            counts = {
                "variant": (report.variants, report.variants_quarantined),
                "specimen": (report.specimens, report.specimens_quarantined),
            }
        for name, (staged, quarantined) in counts.items():
            yield dg.MaterializeResult(
                asset_key=staging_key(name),
                metadata={
                    "dagster/row_count": staged,
                    "rows_quarantined": quarantined,
                    "quarantine_reasons": dg.MetadataValue.json(report.quarantine_reasons if report else {}),
                    "annotation_warnings": dg.MetadataValue.json(
                        report.annotation_warnings if report else {}
                    ),
                    "unread_annotation_formats": dg.MetadataValue.json(
                        report.unread_annotation_formats if report else {}
                    ),
                    "path": dg.MetadataValue.path(str(lake.table_path(lake_dir, "staging", name))),
                },
            )


def _materialization(lake_dir, table: str, report: StagingReport) -> dg.MaterializeResult:
    delta = lake.open_table(lake.table_path(lake_dir, "staging", table))
    rows = [r for r in report.reconciliation if r.table == table]
    reasons = {reason: n for (t, reason), n in report.quarantine_reasons.items() if t == table}
    retired = {reason: n for (t, reason), n in report.retired_reasons.items() if t == table}
    metadata = {
        "dagster/row_count": report.row_counts[table],
        "rows_quarantined": sum(r.quarantined for r in rows),
        "rows_merged": sum(r.merged for r in rows),
        "rows_retired": sum(r.retired for r in rows),
        "quarantine_reasons": dg.MetadataValue.json(reasons),
        "retired_reasons": dg.MetadataValue.json(retired),
        "path": dg.MetadataValue.path(str(lake.table_path(lake_dir, "staging", table))),
        # which path ran and why (lib/staging/incremental.py); rows_changed: inserted, updated or
        # removed by an incremental run (every row in a full build), listed in staging/_touched
        "staging_mode": report.mode,
        "staging_reason": report.reason,
        "rows_changed": report.row_counts[table] if report.touched is None else report.touched.get(table, 0),
    }
    if delta is not None:
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in delta.schema().to_arrow()]
        )
    return dg.MaterializeResult(asset_key=staging_key(table), metadata=metadata)


def _reconciliation(table: str, report: StagingReport) -> dg.AssetCheckResult:
    rows = [r for r in report.reconciliation if r.table == table]
    broken = [r for r in rows if r.unaccounted != 0]
    lines = [
        f"| {r.source_system} | {r.source_entity} | {r.raw_rows} | {r.fanout} | {r.staged} | {r.quarantined} "
        f"| {r.merged} | {r.retired} |"
        for r in rows
    ]
    return dg.AssetCheckResult(
        asset_key=staging_key(table),
        check_name=RECONCILIATION_CHECK,
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "raw_rows": sum(r.raw_rows for r in rows),
            "rows_unaccounted": sum(r.unaccounted for r in rows),
            "counts": dg.MetadataValue.md(
                "| source | raw entity | raw | fan-out | staged | quarantined | merged | retired |\n"
                "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines)
            ),
        },
    )
