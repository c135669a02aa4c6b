"""Automation and freshness: a landed batch flows to the published database without a click.

Two sensors, both on by default in `dagster dev`:

1. `landing_sensor` (defs/raw/sensors.py) starts one `raw_ingest_<source>` run per new batch;
2. `refresh_on_new_data` (refresh.py), a multi-asset sensor over the raw assets and `vocab/store`,
   starts one `build` run (staging -> linkage -> CDM -> checks -> publish) when any of them has new
   materializations, whatever recorded them: a landing run, a materialization launched from the UI's
   asset graph, `rwe ingest`, an event reported from outside a run. Several events make one build; the
   build's own outputs (it materializes `vocab/store` itself) make none. Build runs are lake writers
   (one run at a time, defs/jobs.py), so they queue rather than overlap; each rebuilds from everything
   ingested so far, so a batch that lands while a build runs is picked up by the next one.

A run whose process died is marked failed by the next tick (recovery.py) and run again; a failed build
is retried when the code changed since (retry.py). Both kinds of job take one run at a time and the
lake lock (defs/jobs.py).

Why an asset sensor and not declarative automation conditions: evaluating conditions over this graph
(about 130 asset keys, the CDM multi-asset alone has 40) took 45-75 s per tick on the 2-core machine,
so the daemon would keep a core busy; the sensor asks for the latest event of its ~100 keys in one
query per tick, and reads the events of the few that changed. Why not
the run-status sensor it replaces: it watched only the raw ingest job, so a partition materialized
from the asset graph, or a new vocabulary, started no build.

Freshness: the published database and the results analysts read are expected to be refreshed within
a day (warn after 12 hours): sites deliver at least daily, so an older file means the pipeline has
stopped. The UI shows each of those assets as fresh, warning or failing.
"""

from datetime import timedelta

import dagster as dg

# The refresh sensor is imported from refresh.py, not re-exported here: refresh.py imports defs/jobs.py,
# which imports recovery.py and retry.py of this package, so re-exporting it would close a circle.
__all__ = ["DAILY", "with_freshness"]

DAILY = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=24), warn_window=timedelta(hours=12))
ANALYST_FACING_LAYERS = ("publish", "results")


def with_freshness(assets: list) -> list:
    """The same assets, with the freshness policy on the published file and the results tables."""
    return list(dg.map_asset_specs(_fresh_spec, assets))


def _fresh_spec(spec: dg.AssetSpec) -> dg.AssetSpec:
    return dg.apply_freshness_policy(spec, DAILY) if spec.key.path[0] in ANALYST_FACING_LAYERS else spec
