"""One dynamic partitions definition for every source's batches; keys are '<source>__<batch>'."""

import dagster as dg

batches = dg.DynamicPartitionsDefinition(name="batches")
