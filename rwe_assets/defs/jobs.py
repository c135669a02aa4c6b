"""Jobs a person launches by hand (the sensors launch asset selections directly)."""

import dagster as dg

from rwe_assets.defs.partitions import batches

raw_ingest_job = dg.define_asset_job(
    "raw_ingest",
    selection=dg.AssetSelection.key_prefixes("raw"),
    partitions_def=batches,
    description="Ingest one landed batch (partition '<source>__<batch>') into the raw layer.",
)

build_job = dg.define_asset_job(
    "build",
    selection=dg.AssetSelection.all() - dg.AssetSelection.key_prefixes("raw"),
    description="Rebuild everything downstream of the raw layer: staging, linkage, CDM, results.",
)


def run_landed_batches(defs: dg.Definitions, instance: dg.DagsterInstance, landing_dir, registry) -> list:
    """Register every batch found in the landing zone and run the raw ingest for each, in-process.

    What the landing sensor does on a schedule, done now: used by `rwe ingest` and `rwe demo`.
    Batches already ingested cost a manifest lookup and add nothing. Returns (partition key, run).
    """
    from rwe_assets.defs.raw.assets import raw_key
    from rwe_assets.defs.raw.sensors import batch_tags
    from rwe_assets.lib.landing import list_batches

    job = defs.resolve_job_def(raw_ingest_job.name)
    outcomes = []
    for source in registry:
        landed, _ = list_batches(landing_dir, source.name)
        for batch in landed:
            if not instance.has_dynamic_partition(batches.name, batch.partition_key):
                instance.add_dynamic_partitions(batches.name, [batch.partition_key])
            result = job.execute_in_process(
                instance=instance,
                partition_key=batch.partition_key,
                asset_selection=[raw_key(source.name, e) for e in source.entity_names],
                raise_on_error=False,
                tags=batch_tags(batch),
            )
            outcomes.append((batch.partition_key, result))
    return outcomes
