"""Raw layer assets: one multi-asset per source, one asset per entity (raw/<source>/<entity>),
partitioned by landed batch with the source's own partitions definition (`batches_<source>`,
defs/partitions.py), so each raw asset lists only its own source's batches.

The partition key is checked here, not only by the landing sensor: a key typed into the launchpad
(`ehr_site_a__../../x`) is refused before any path is built from it (lib/landing.resolve_batch). The
ingest holds the lake lock (lib/lake_lock.py; re-entrant, so a run that already holds it for its
whole length goes straight on)."""

import dagster as dg

from rwe_assets.defs.partitions import batches_for
from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.lake_lock import lake_lock
from rwe_assets.lib.landing import parse_partition_key, resolve_batch
from rwe_assets.lib.raw_ingest import BatchReport, FileReconciliation, ingest_batch, reconcile_files
from rwe_assets.lib.sources import SourceRegistry, SourceSpec, load_registry
from rwe_assets.resources import RweConfig

RECONCILIATION_CHECK = "raw_rows_reconcile"


def raw_key(source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source, entity])


def build_raw_assets(registry: SourceRegistry | None = None) -> list[dg.AssetsDefinition]:
    registry = registry or load_registry()
    return [_source_assets(source) for source in registry]


def _source_assets(source: SourceSpec) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=raw_key(source.name, entity.name),
            group_name=f"raw_{source.name}",
            kinds={"delta", source.format},
            owners=[],
            tags={"layer": "raw", "source_kind": source.kind},
            description=(
                f"{entity.name} of {source.owner}: every landed {source.format.upper()} row, values kept "
                "as text exactly as read, with provenance (_batch_id, _source_file, _file_sha256, "
                "_line_number, _ingested_at). Append-only; a file is ingested once (ingest manifest)."
            ),
            code_version="raw-1",
        )
        for entity in source.entities
    ]
    checks = [
        dg.AssetCheckSpec(
            RECONCILIATION_CHECK,
            asset=spec.key,
            blocking=True,
            description="For every file of the batch: records read = rows stored + rows quarantined.",
        )
        for spec in specs
    ]

    @dg.multi_asset(
        name=f"raw_{source.name}",
        specs=specs,
        check_specs=checks,
        partitions_def=batches_for(source.name),
        pool=f"lake_raw_{source.name}",  # one writer per source's Delta tables at a time
    )
    def _ingest(context: dg.AssetExecutionContext, rwe: RweConfig):
        partition_source, batch_id = parse_partition_key(context.partition_key)
        if partition_source != source.name:
            raise dg.Failure(
                f"partition {context.partition_key} belongs to source {partition_source}, not {source.name}"
            )
        settings = rwe.settings()
        try:
            resolve_batch(settings.landing_dir, source.name, batch_id)
        except InputFileError as error:
            raise dg.Failure(f"partition refused: {error}", allow_retries=False) from None
        with lake_lock(settings.data_dir, f"raw ingest of {source.name}", on_wait=context.log.info):
            report = ingest_batch(
                settings.lake_dir, settings.landing_dir, source, batch_id, run_id=context.run_id
            )
            reconciliation = reconcile_files(settings.lake_dir, source, batch_id)
        for entity in source.entity_names:
            yield _materialization(settings.lake_dir, source.name, entity, report)
            yield _reconciliation_result(source.name, entity, report, reconciliation)
        if report.failed:
            raise dg.Failure(
                description=f"{len(report.failed)} file(s) of batch {batch_id} could not be read",
                metadata={"errors": dg.MetadataValue.md("\n".join(f"- {f.error}" for f in report.failed))},
            )

    return _ingest


def _materialization(lake_dir, source: str, entity: str, report: BatchReport) -> dg.MaterializeResult:
    path = lake.table_path(lake_dir, "raw", source, entity)
    table = lake.open_table(path)
    files = report.files_for(entity)
    metadata = {
        "rows_added": report.rows_stored(entity),
        "files_ingested": len(files),
        "rows_quarantined_in_batch": sum(f.rows_quarantined for f in report.files),
        "batch_id": report.batch_id,
        "path": dg.MetadataValue.path(str(path)),
    }
    if table is not None:
        schema = table.schema().to_arrow()
        metadata["dagster/row_count"] = table.to_pyarrow_dataset().count_rows()
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema]
        )
        metadata["delta_version"] = table.version()
    if files:
        lines = ["| file | sha256 | version | rows | quarantined |", "|---|---|---|---|---|"]
        lines += [
            f"| {f.relative_path} | {f.file_sha256[:12]} | {f.file_version} | {f.rows_stored[entity]} | {f.rows_quarantined} |"
            for f in files
        ]
        metadata["provenance"] = dg.MetadataValue.md("\n".join(lines))
        warned = [f"- {f.relative_path}: {w}" for f in files for w in f.warnings]
        if warned:  # read, with a warning (a VCF field used but not declared in its header, say)
            metadata["warnings"] = dg.MetadataValue.md("\n".join(warned))
    return dg.MaterializeResult(asset_key=raw_key(source, entity), metadata=metadata)


def _reconciliation_result(
    source: str, entity: str, report: BatchReport, reconciliation: list[FileReconciliation]
) -> dg.AssetCheckResult:
    relevant = [r for r in reconciliation if entity in r.entities]
    broken = [r for r in relevant if r.unaccounted != 0]
    return dg.AssetCheckResult(
        asset_key=raw_key(source, entity),
        check_name=RECONCILIATION_CHECK,
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "files_checked": len(relevant),
            "records_read": sum(r.records_read for r in relevant),
            "rows_stored": sum(r.rows_stored for r in relevant),
            "rows_quarantined": sum(r.rows_quarantined for r in relevant),
            "rows_unaccounted": sum(r.unaccounted for r in relevant),
            "files_not_reconciling": dg.MetadataValue.md(
                "\n".join(f"- {r.relative_path}: {r.unaccounted} row(s) unaccounted" for r in broken)
                or "none"
            ),
        },
    )
