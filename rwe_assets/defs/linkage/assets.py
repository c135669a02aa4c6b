"""Linkage assets: keyed tokens, scored pairs, the master patient index, clerical review, quality."""

import dagster as dg

from rwe_assets.defs.staging.assets import staging_key
from rwe_assets.errors import ConfigError
from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons
from rwe_assets.lib.linkage.keys import resolve_key
from rwe_assets.lib.linkage.quality import F1_THRESHOLD, MIN_TRUE_PAIRS, PRECISION_THRESHOLD, verdicts
from rwe_assets.lib.linkage_key import fix_hint, lake_non_demo_files
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.lib.truth_files import TRUTH_DIR
from rwe_assets.resources import RweConfig

TOKENS = dg.AssetKey(["linkage", "tokens"])
PAIRS = dg.AssetKey(["linkage", "pairs"])
CROSSWALK = dg.AssetKey(["linkage", "person_crosswalk"])
CLERICAL = dg.AssetKey(["linkage", "clerical_review"])
METRICS = dg.AssetKey(["linkage", "metrics"])
CODE_VERSION = "linkage-fs-1"


def _spec(key: dg.AssetKey, deps: list, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key, group_name="linkage", kinds={"delta", "duckdb"}, deps=deps, description=description,
        code_version=CODE_VERSION,
    )  # fmt: skip


@dg.multi_asset(
    name="linkage",
    specs=[
        _spec(
            TOKENS,
            [staging_key("person_source"), staging_key("person_pii")],
            "Keyed HMAC-SHA256 tokens (first 60 bits) of each source person's normalized identifiers and "
            "keyed Bloom filters of name and street q-grams; no identifier in clear (docs/linkage.md).",
        ),
        _spec(
            PAIRS,
            [TOKENS],
            "Candidate pairs from token blocking, scored by a Fellegi-Sunter model (Splink, EM-trained m/u, "
            "kept in linkage/model.json), with deterministic rule, household guard and decision.",
        ),
        _spec(
            CROSSWALK,
            [PAIRS],
            "(source_system, source_person_id) -> person_id: connected components of matched pairs. Ids are "
            "stable: later batches add persons or merge them (linkage/person_history).",
        ),
        _spec(
            CLERICAL, [PAIRS], "Pairs in the grey zone (0.50 <= p < 0.95 or household conflict): to review."
        ),
        _spec(
            METRICS, [CROSSWALK], "Counts, match rates per source pair, score histogram, F1 vs ground truth."
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "f1_vs_ground_truth",
            asset=CROSSWALK,
            description=f"Pairwise F1 against ground truth is at least {F1_THRESHOLD} (from {MIN_TRUE_PAIRS} "
            "true pairs on). Without truth: not evaluated (WARN, evaluated=false), never passed.",
        ),
        dg.AssetCheckSpec(
            "precision_vs_ground_truth",
            asset=CROSSWALK,
            description=f"Pairwise precision against ground truth is at least {PRECISION_THRESHOLD}: a false "
            "merge turns it red. Without truth: not evaluated (WARN, evaluated=false), never passed.",
        ),
    ],
    pool="lake_linkage",
)
def linkage(context: dg.AssetExecutionContext, rwe: RweConfig):
    settings = rwe.settings()
    try:
        key = resolve_key(settings.linkage_key, settings.data_dir)
    except ConfigError as error:
        raise dg.Failure(str(error)) from None
    if key.demo and lake_non_demo_files(settings):
        raise dg.Failure(
            f"the lake holds records that are not demo data: the public demo key is refused; {fix_hint(settings)}"
        )
    if key.demo:
        context.log.warning("RWE_LINKAGE_KEY is not set: linking demo data with the public DEMO key")
    con = staging_connection(settings.duckdb_memory_limit, settings.duckdb_threads)
    try:
        register_staged_persons(con, settings.lake_dir)
    except FileNotFoundError as error:
        raise dg.Failure(str(error)) from None
    deduplicated = tuple(source.name for source in load_registry() if source.deduplicated)
    result = link(
        con, settings.lake_dir, key.value, truth_dir=settings.data_dir / TRUTH_DIR, deduplicated=deduplicated
    )
    con.close()
    common = {"demo_key": key.demo, "model_trained_this_run": result.trained}
    counts = {name: dg.MetadataValue.float(float(v)) for name, v in result.counts.items()}
    yield dg.MaterializeResult(
        asset_key=TOKENS, metadata={**common, "dagster/row_count": result.crosswalk.num_rows}
    )
    yield dg.MaterializeResult(asset_key=PAIRS, metadata={**common, **counts})
    yield dg.MaterializeResult(
        asset_key=CROSSWALK, metadata={**common, "dagster/row_count": result.crosswalk.num_rows, **counts}
    )
    yield dg.MaterializeResult(
        asset_key=CLERICAL, metadata={"dagster/row_count": int(result.counts["pairs_for_review"])}
    )
    yield dg.MaterializeResult(asset_key=METRICS, metadata=_quality_metadata(result))
    yield from _checks(context, result)


def _quality_metadata(result) -> dict:
    metrics = result.metrics.to_pylist()
    values = {
        f"{r['metric']}[{r['dimension']}]" if r["dimension"] else r["metric"]: r["value"] for r in metrics
    }
    tables = ("pairs_by_match_weight", "persons_by_records")
    shown = {k: v for k, v in values.items() if not k.startswith(tables)}
    sizes = "\n".join(
        f"| {r['dimension']} | {int(r['value'])} |" for r in metrics if r["metric"] == "persons_by_records"
    )
    histogram = "\n".join(
        f"| {r['dimension']} | {int(r['value'])} |" for r in metrics if r["metric"] == "pairs_by_match_weight"
    )
    return {
        "dagster/row_count": result.metrics.num_rows,
        "ground_truth_evaluated": result.metric("truth_records", "truth") is not None,
        **{k: dg.MetadataValue.float(float(v)) for k, v in shown.items()},
        "match_weight_histogram": dg.MetadataValue.md("| weight | pairs |\n|---|---|\n" + histogram),
        "cluster_sizes": dg.MetadataValue.md("| records | persons |\n|---|---|\n" + sizes),
    }


def _checks(context, result):
    """One result per check. A check that cannot be evaluated (no ground truth, too little of it) is
    reported as not passed at WARN severity with `evaluated: false`: never a pass. (Dagster requires a
    result for every check of a multi-asset that cannot be subset, so it cannot simply be skipped.)"""
    for name, (passed, reason) in verdicts(result.metric).items():
        measured = {
            k: float(result.metric(k, "truth"))
            for k in ("precision", "recall", "f1", "true_pairs", "predicted_pairs", "persons_merging_people",
                      "persons_merging_twins", "persons_merging_household_members")
            if result.metric(k, "truth") is not None
        }  # fmt: skip
        if passed is None:
            context.log.info(f"check {name}: {reason}")
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key=CROSSWALK,
            passed=bool(passed),
            severity=dg.AssetCheckSeverity.WARN if passed is None else dg.AssetCheckSeverity.ERROR,
            description=reason,
            metadata={"evaluated": passed is not None, **measured},
        )


linkage_assets = [linkage]
