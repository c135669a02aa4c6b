"""Governance assets, run at the end of every build (after publishing) and on their own from the UI:

- governance/retention: superseded lake files and Delta log older than RWE_RETENTION_DAYS deleted
  (lib/governance/retention.py), with an audit row;
- governance/access: owner-only modes on the lake and Dagster's storage, analyst-group modes on the
  published files (lib/governance/permissions.py); its check `pii_paths_owner_only` is red while any
  path holding PII or tokens is open to group or others;
- governance/audit_trail: the audit table in the UI (rows, counts by action, the latest rows), with
  the check `chain_intact`: every hash recomputed, the Delta history append-only, and the head seen
  by the previous materialization still there (a deleted tail breaks no chain).
"""

from collections import Counter

import dagster as dg

from rwe_assets.lib.governance import audit, permissions, retention
from rwe_assets.lib.lake_lock import lake_lock
from rwe_assets.resources import RweConfig

PUBLISHED = dg.AssetKey(["publish", "rwe_duckdb"])
RETENTION = dg.AssetKey(["governance", "retention"])
ACCESS = dg.AssetKey(["governance", "access"])
AUDIT_TRAIL = dg.AssetKey(["governance", "audit_trail"])
CHAIN_CHECK = "chain_intact"
LATEST_ROWS = 20


@dg.asset(
    key=RETENTION,
    group_name="governance",
    kinds={"delta"},
    deps=[PUBLISHED],
    code_version="retention-1",
)
def retention_asset(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """Deletes lake files that no current Delta version reads, and Delta log entries, once older than
    RWE_RETENTION_DAYS (time travel ends there); current data stays. One audit row with the counts."""
    settings = rwe.settings()
    with lake_lock(settings.data_dir, "retention", on_wait=context.log.info), permissions.private_umask():
        report = retention.apply_retention(settings.lake_dir, settings.retention_days)
    audit.record(settings, "retention", report.audit_what(), run_id=context.run_id)
    return dg.MaterializeResult(
        metadata={
            "retention_days": settings.retention_days,
            "tables": len(report.tables),
            "files_removed": report.files_removed,
            "log_files_removed": report.log_files_removed,
        }
    )


@dg.asset(
    key=ACCESS,
    group_name="governance",
    deps=[RETENTION],
    code_version="access-1",
)
def access_asset(rwe: RweConfig) -> dg.MaterializeResult:
    """Owner-only modes (0700/0600) on the lake and Dagster's storage; the published CDM and the
    de-identified extract 0640, group RWE_ANALYST_GROUP (else the owner's group)."""
    settings = rwe.settings()
    counts = permissions.apply(settings.data_dir, settings.analyst_group)
    return dg.MaterializeResult(metadata={**counts, "analyst_group": settings.analyst_group or "(owner's)"})


@dg.asset_check(
    asset=ACCESS,
    name="pii_paths_owner_only",
    description="Every path under the lake, and Dagster's storage folder, is owner-only.",
)
def owner_only_check(rwe: RweConfig) -> dg.AssetCheckResult:
    problems = permissions.mode_problems(rwe.settings().data_dir)
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "loose_paths": len(problems),
            "examples": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:20]) or "none"),
        },
    )


class AuditTrailConfig(dg.Config):
    # After a red chain check was investigated: take the trail's current last row as the reference
    # for the next checks (the red result stays in the run history).
    accept_current_head: bool = False


@dg.asset(
    key=AUDIT_TRAIL,
    group_name="governance",
    kinds={"delta"},
    deps=[ACCESS],
    check_specs=[
        dg.AssetCheckSpec(
            CHAIN_CHECK,
            asset=AUDIT_TRAIL,
            description="Hash chain intact, history append-only, the previously seen head still present.",
        )
    ],
    code_version="audit-trail-1",
)
def audit_trail_asset(context: dg.AssetExecutionContext, rwe: RweConfig, config: AuditTrailConfig):
    """The append-only, hash-chained audit trail (<lake>/audit/trail): who did what, when, with what
    outcome. Rows hold paths, counts and ids, never a data value."""
    settings = rwe.settings()
    anchor = _previous_anchor(context)
    problems = audit.verify_chain(settings, anchor)
    trail = audit.read_trail(settings)
    head = audit.head(settings.lake_dir)
    kept = anchor if problems and anchor and not config.accept_current_head else head
    yield dg.MaterializeResult(metadata=_trail_metadata(trail, kept))
    yield dg.AssetCheckResult(
        check_name=CHAIN_CHECK,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_verified": trail.num_rows,
            "anchor_seq": anchor[0] if anchor else 0,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:50]) or "none"),
        },
    )


def _previous_anchor(context: dg.AssetExecutionContext) -> tuple[int, str] | None:
    event = context.instance.get_latest_materialization_event(AUDIT_TRAIL)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if "anchor_seq" not in metadata or "anchor_hash" not in metadata:
        return None
    return metadata["anchor_seq"].value, metadata["anchor_hash"].value


def _trail_metadata(trail, anchor: tuple[int, str]) -> dict:
    rows = trail.slice(max(trail.num_rows - LATEST_ROWS, 0)).to_pylist()[::-1]
    lines = ["| seq | at (UTC) | who | action | outcome | what |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['seq']} | {r['at']:%Y-%m-%d %H:%M:%S} | {r['who']} | {r['action']} | {r['outcome']} | "
        f"{r['what'][:160].replace('|', '/')} |"
        for r in rows
    ]
    by_action = Counter(trail.column("action").to_pylist())
    return {
        "dagster/row_count": trail.num_rows,
        "anchor_seq": anchor[0],
        "anchor_hash": anchor[1],
        "rows_by_action": dg.MetadataValue.json(dict(sorted(by_action.items()))),
        "latest_rows": dg.MetadataValue.md("\n".join(lines)),
    }


governance_assets = [retention_asset, access_asset, audit_trail_asset]
governance_checks = [owner_only_check]
