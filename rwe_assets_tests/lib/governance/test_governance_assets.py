"""The governance assets in Dagster: retention audited, modes applied and checked, the chain check red
when the trail is tampered with (including a deleted tail, caught against the previous run's head)."""

import json
import os

import dagster as dg
import pytest
from deltalake import DeltaTable

from rwe_assets.defs.governance import AUDIT_TRAIL, governance_assets, governance_checks
from rwe_assets.lib.governance import audit
from rwe_assets.resources import RweConfig
from rwe_assets.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "data")
    for number in range(3):
        audit.record(settings, "ingest", {"file": f"clinic/b1/f{number}.csv", "rows_stored": number})
    return settings


def materialize(settings, instance, run_config=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*governance_assets, *governance_checks],
        instance=instance,
        resources={"rwe": RweConfig(data_dir=str(settings.data_dir))},
        run_config=run_config,
        raise_on_error=False,
    )


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_a_build_end_is_audited_and_checked_green(settings):
    with dg.instance_for_test() as instance:
        result = materialize(settings, instance)
    assert result.success
    assert checks(result) == {"chain_intact": True, "pii_paths_owner_only": True}
    trail = audit.read_trail(settings).to_pylist()
    assert trail[-1]["action"] == "retention" and trail[-1]["run_id"] == result.run_id
    assert json.loads(trail[-1]["what"])["retention_days"] == 30
    shown = result.asset_materializations_for_node("governance__audit_trail")[0].metadata
    assert shown["dagster/row_count"].value == 4 and shown["anchor_seq"].value == 4
    assert os.stat(settings.data_dir).st_mode & 0o777 == 0o750


def test_an_altered_row_turns_the_chain_check_red(settings):
    DeltaTable(str(audit.trail_path(settings.lake_dir))).update(
        updates={"outcome": "'failed'"}, predicate="seq = 2"
    )
    with dg.instance_for_test() as instance:
        assert checks(materialize(settings, instance))["chain_intact"] is False


def test_a_deleted_tail_turns_the_chain_check_red_on_the_next_run(settings):
    with dg.instance_for_test() as instance:
        assert checks(materialize(settings, instance))["chain_intact"] is True
        log = audit.trail_path(settings.lake_dir) / "_delta_log"
        sorted(log.glob("*.json"))[-1].unlink()  # the retention row of that run vanishes, log and all
        assert audit.verify_chain(settings) == []  # the chain alone cannot tell
        assert checks(materialize(settings, instance))["chain_intact"] is False
        assert checks(materialize(settings, instance))["chain_intact"] is False  # stays red
        accepted = materialize(
            settings,
            instance,
            {"ops": {"governance__audit_trail": {"config": {"accept_current_head": True}}}},
        )
        assert checks(accepted)["chain_intact"] is False  # the run that accepts still shows it
        assert checks(materialize(settings, instance))["chain_intact"] is True


def test_a_loose_lake_file_turns_the_owner_only_check_red_until_access_runs(settings):
    trail_file = next(audit.trail_path(settings.lake_dir).glob("*.parquet"))
    os.chmod(trail_file, 0o644)
    with dg.instance_for_test() as instance:
        check_only = dg.materialize(
            governance_checks,
            instance=instance,
            resources={"rwe": RweConfig(data_dir=str(settings.data_dir))},
            selection=dg.AssetSelection.checks(*governance_checks),
            raise_on_error=False,
        )
        assert checks(check_only) == {"pii_paths_owner_only": False}
        assert checks(materialize(settings, instance))["pii_paths_owner_only"] is True
    assert AUDIT_TRAIL.path == ["governance", "audit_trail"]
