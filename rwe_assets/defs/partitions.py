"""Batches as partitions, one dynamic partitions definition per source (`batches_<source>`).

Each source's raw assets carry only their own source's batches, so the UI shows a raw asset's
partitions as that source's landed batches and nothing else (with one definition shared by all
sources, every raw asset listed every other source's batches as Missing). Keys stay
'<source>__<batch>': unique across sources, so a run's `dagster/partition` tag names one batch of one
source wherever it is read (the sensor's already-ingested lookup, lost-run retries).
"""

from functools import cache

import dagster as dg


@cache  # one object per source: the assets, its job and the sensor's add-requests share it
def batches_for(source: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"batches_{source}")


def register_batch(instance: dg.DagsterInstance, source: str, partition_key: str) -> None:
    """Add a batch's partition to its source's definition unless it is there (what the CLI does
    before it runs the batch in-process; the landing sensor asks the daemon to do it instead)."""
    name = batches_for(source).name
    if not instance.has_dynamic_partition(name, partition_key):
        instance.add_dynamic_partitions(name, [partition_key])
