"""The linkage multi-asset in Dagster: tables, metadata, the F1 check; no identifier in the event log."""

import datetime as dt

import dagster as dg
import pyarrow as pa
from deltalake import write_deltalake

from rwe_assets.defs.linkage.assets import CROSSWALK, linkage
from rwe_assets.lib import lake
from rwe_assets.resources import RweConfig

PEOPLE = [
    (
        "site_a",
        "a1",
        "Katherine",
        "Quackenbush",
        "1961-04-09",
        "F",
        "912-48-7731",
        "77 Larkspur Lane",
        "555-301-8842",
    ),
    ("site_b", "b1", "Kathy", "Quackenbush", "1961-04-09", "female", None, "77 Larkspur Ln", "555-301-8842"),
    ("site_a", "a2", "Marcellus", "Vantongeren", "1988-11-23", "M", "912-55-1020", "9 Orchard Way", None),
]


def stage_person_pii(lake_dir):
    names = ["source_system", "source_person_id", "given_name", "family_name", "birth_date", "sex", "ssn",
             "address_line", "phone"]  # fmt: skip
    table = pa.table({n: [p[i] for p in PEOPLE] for i, n in enumerate(names)})
    table = table.append_column("_batch_id", pa.array(["b1"] * len(PEOPLE)))
    table = table.set_column(4, "birth_date", pa.array([dt.date.fromisoformat(p[4]) for p in PEOPLE]))
    write_deltalake(str(lake.table_path(lake_dir, "staging", "person_pii")), table)
    # Every staged person, one of them sent without identifiers (a payer with no member file).
    persons = [(p[0], p[1]) for p in PEOPLE] + [("payer", "p9")]
    source = pa.table(
        {
            "source_system": [p[0] for p in persons],
            "source_person_id": [p[1] for p in persons],
            "_batch_id": ["b1"] * len(persons),
        }
    )
    write_deltalake(str(lake.table_path(lake_dir, "staging", "person_source")), source)


def test_materialize_links_and_leaks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RWE_LINKAGE_KEY", "a-test-key-long-enough-for-linkage")
    stage_person_pii(tmp_path / "lake")
    with dg.instance_for_test() as instance:
        result = dg.materialize([linkage], instance=instance, resources={"rwe": RweConfig()})
        assert result.success
        # no ground truth: both quality checks are not evaluated, which is not a pass
        checks = result.get_asset_check_evaluations()
        assert sorted((c.check_name, c.passed, c.metadata["evaluated"].value) for c in checks) == [
            ("f1_vs_ground_truth", False, False),
            ("precision_vs_ground_truth", False, False),
        ]
        assert {c.severity for c in checks} == {dg.AssetCheckSeverity.WARN}
        # diagnostics that need no truth
        metrics = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(["linkage", "metrics"])
        )
        assert metrics["ground_truth_evaluated"].value is False
        assert 0 <= metrics["grey_zone_share"].value <= 1 and metrics["comparisons_per_new_record"].value > 0
        assert "| 2 | 1 |" in metrics["cluster_sizes"].value  # a1 + b1
        crosswalk = {r["source_person_id"]: r["person_id"] for r in lake.read_table(
            lake.table_path(tmp_path / "lake", "linkage", "person_crosswalk")).to_pylist()}  # fmt: skip
        assert crosswalk["a1"] == crosswalk["b1"] != crosswalk["a2"]
        assert crosswalk["p9"] not in (crosswalk["a1"], crosswalk["a2"])  # no identifiers: alone
        records = instance.get_records_for_run(result.run_id).records
        log = " ".join(str(r.event_log_entry) for r in records).lower()
    secrets = {v.lower() for p in PEOPLE for v in p[2:] if v and len(v) > 3 and v not in ("female",)}
    secrets |= {v.replace("-", "") for v in secrets if v[:1].isdigit()}
    assert [s for s in secrets if s in log] == []


def test_without_a_key_real_data_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RWE_LINKAGE_KEY", raising=False)
    stage_person_pii(tmp_path / "lake")
    (tmp_path / "landing" / "site_a" / "b1").mkdir(parents=True)
    (tmp_path / "landing" / "site_a" / "b1" / "patients.csv").write_text("not demo data")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [linkage], instance=instance, resources={"rwe": RweConfig()}, raise_on_error=False
        )
    assert not result.success
    assert lake.read_table(lake.table_path(tmp_path / "lake", "linkage", CROSSWALK.path[-1])) is None


def test_a_false_merge_turns_the_precision_check_red(tmp_path, monkeypatch):
    """Truth says a1 and b1 (linked as one person) are two people: precision 0, the check fails; F1
    has too few true pairs to judge and stays not evaluated."""
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RWE_LINKAGE_KEY", "a-test-key-long-enough-for-linkage")
    stage_person_pii(tmp_path / "lake")
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "person_records.csv").write_text(
        "SOURCE,SOURCE_PERSON_ID,TRUE_PERSON_ID\nsite_a,a1,P1\nsite_b,b1,P2\nsite_a,a2,P3\n"
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize([linkage], instance=instance, resources={"rwe": RweConfig()})
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    precision = checks["precision_vs_ground_truth"]
    assert (precision.passed, precision.severity, precision.metadata["evaluated"].value) == (
        False, dg.AssetCheckSeverity.ERROR, True)  # fmt: skip
    assert checks["f1_vs_ground_truth"].metadata["evaluated"].value is False
    assert checks["precision_vs_ground_truth"].metadata["persons_merging_people"].value == 1.0
