"""What a lab really sends across batches: a sample manifest re-sent unchanged with a new VCF, a sample
name re-used for another person, a corrected manifest row, a VCF sample no manifest names. The calls
must go to the person the manifest gives for that file and sample, and to no one else.

Fixtures: hand-written files under rwe_assets_tests/data/genomics_resend/ (README there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import reconcile, stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch, read_manifest
from rwe_assets.lib.sources import SourceSpec, load_registry
from rwe_assets_tests.lib.genomics.conftest import land_lab

DATA = Path(__file__).parent / "data" / "genomics_resend"


@pytest.fixture
def lab() -> SourceSpec:
    return load_registry().get("lab")


def _files(*names: str) -> dict[str, str]:
    """Fixture files by landing name: 'run.vcf=first.vcf' lands first.vcf as run.vcf."""
    pairs = [name.split("=") if "=" in name else (name, name) for name in names]
    return {landed: (DATA / stored).read_text() for landed, stored in pairs}


def _land(dirs, lab, batch: str, *names: str):
    lake_dir, landing = dirs
    land_lab(landing, batch, _files(*names))
    ingest_batch(lake_dir, landing, lab, batch)
    report = stage_genomics(lake_dir)
    assert all(raw == staged + quarantined for _, raw, staged, quarantined in reconcile(lake_dir))
    return report


def _table(lake_dir: Path, name: str) -> list[dict]:
    table = lake.read_table(lake.table_path(lake_dir, "staging", name))
    return [] if table is None else table.to_pylist()


def _calls(lake_dir: Path) -> list[tuple[str, int, str, str]]:
    """(VCF, position, sample, person) per staged call."""
    return sorted(
        (v["_source_file"], v["pos"], v["sample_id"], v["source_person_id"])
        for v in _table(lake_dir, "variant")
    )


def _quarantined_calls(lake_dir: Path) -> list[tuple[str, str]]:
    return sorted((q["_source_file"], q["reason_code"]) for q in _table(lake_dir, "variant_quarantine"))


def test_a_manifest_re_sent_unchanged_with_a_new_vcf_covers_the_new_vcf(dirs, lab):
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv")
    # b2: the same manifest file, byte for byte (ingest records it as a duplicate), and a new run.vcf
    report = _land(dirs, lab, "b2", "run.vcf=second.vcf", "sample_manifest.csv")
    statuses = {r["relative_path"]: r["status"] for r in read_manifest(dirs[0], "lab").to_pylist()}
    assert statuses["lab/b2/sample_manifest.csv"] == "duplicate"
    assert _quarantined_calls(dirs[0]) == []
    assert _calls(dirs[0]) == [
        ("lab/b1/run.vcf", 100, "NA00001", "P1"),
        ("lab/b2/run.vcf", 300, "NA00001", "P1"),
    ]
    assert (report.specimens, report.specimens_quarantined) == (2, 0)
    specimens = sorted((s["specimen_key"], s["_source_file"]) for s in _table(dirs[0], "specimen"))
    assert specimens == [
        ("lab|b1|run.vcf|NA00001", "lab/b1/sample_manifest.csv"),
        ("lab|b2|run.vcf|NA00001", "lab/b2/sample_manifest.csv"),
    ]


def test_a_manifest_without_vcf_file_re_sent_unchanged_covers_its_new_batch(dirs, lab):
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv=batch_scope_manifest.csv")
    _land(dirs, lab, "b2", "other.vcf=second.vcf", "sample_manifest.csv=batch_scope_manifest.csv")
    assert _quarantined_calls(dirs[0]) == []
    assert _calls(dirs[0]) == [
        ("lab/b1/run.vcf", 100, "NA00001", "P1"),
        ("lab/b2/other.vcf", 300, "NA00001", "P1"),
    ]


def test_a_re_sent_manifest_in_a_batch_without_vcf_corrects_nothing_and_adds_no_person(dirs, lab):
    """The same manifest again, alone: the earlier file keeps its person, one specimen per sample."""
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv")
    report = _land(dirs, lab, "b2", "sample_manifest.csv")
    assert _calls(dirs[0]) == [("lab/b1/run.vcf", 100, "NA00001", "P1")]
    assert (report.specimens, report.specimens_quarantined) == (1, 1)
    (kept,) = _table(dirs[0], "specimen")
    assert (kept["specimen_key"], kept["source_person_id"]) == ("lab|b1|run.vcf|NA00001", "P1")


def test_a_manifest_without_vcf_file_re_sent_alone_adds_no_specimen(dirs, lab):
    """Without VCF_FILE a row covers its own batch's VCFs: its copy in a batch with no VCF of the sample
    is the specimen already staged (quarantined DUPLICATE_SAMPLE_ID), not a second one without calls."""
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv=batch_scope_manifest.csv")
    report = _land(dirs, lab, "b2", "sample_manifest.csv=batch_scope_manifest.csv")
    assert (report.specimens, report.specimens_quarantined) == (1, 1)
    (kept,) = _table(dirs[0], "specimen")
    assert (kept["specimen_key"], kept["has_variant_calls"]) == ("lab|b1||NA00001", True)


def test_a_sample_name_re_sequenced_for_another_person_never_moves_earlier_calls(dirs, lab):
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv")
    _land(dirs, lab, "b2", "run.vcf=second.vcf", "sample_manifest.csv=other_person_manifest.csv")
    assert _calls(dirs[0]) == [
        ("lab/b1/run.vcf", 100, "NA00001", "P1"),
        ("lab/b2/run.vcf", 300, "NA00001", "P2"),
    ]


def test_a_new_vcf_whose_sample_no_manifest_of_its_batch_names_is_quarantined(dirs, lab):
    """b2 sends a new run.vcf and no manifest: b1's row (for b1's run.vcf) does not cover it."""
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv")
    _land(dirs, lab, "b2", "run.vcf=second.vcf")
    assert _calls(dirs[0]) == [("lab/b1/run.vcf", 100, "NA00001", "P1")]
    assert _quarantined_calls(dirs[0]) == [("lab/b2/run.vcf", "SAMPLE_NOT_IN_MANIFEST")]


def test_a_header_sample_in_no_manifest_is_quarantined_and_the_named_one_staged(dirs, lab):
    _land(dirs, lab, "b1", "run.vcf=two_samples.vcf", "sample_manifest.csv")
    assert _calls(dirs[0]) == [("lab/b1/run.vcf", 100, "NA00001", "P1")]
    assert _quarantined_calls(dirs[0]) == [("lab/b1/run.vcf", "SAMPLE_NOT_IN_MANIFEST")]
    (row,) = _table(dirs[0], "variant_quarantine")
    assert (row["sample_id"], row["field"]) == ("NA00099", "sample_id")


def test_a_corrected_row_in_a_manifest_only_batch_moves_the_earlier_files_calls(dirs, lab):
    """b1's row was wrong (P1); b2 holds only the corrected row (P2) naming run.vcf: b1's calls move
    to P2 and b1's row is superseded, not kept as a second specimen."""
    _land(dirs, lab, "b1", "run.vcf=first.vcf", "sample_manifest.csv")
    report = _land(dirs, lab, "b2", "sample_manifest.csv=other_person_manifest.csv")
    assert _calls(dirs[0]) == [("lab/b1/run.vcf", 100, "NA00001", "P2")]
    assert (report.specimens, report.specimens_quarantined) == (1, 1)
    assert [q["reason_code"] for q in _table(dirs[0], "specimen_quarantine")] == ["DUPLICATE_SAMPLE_ID"]


def test_a_manifest_row_sent_after_its_vcf_stages_the_quarantined_calls(dirs, lab):
    """b1's VCF has a sample no manifest names (quarantined); b2's manifest names it: staged then."""
    _land(dirs, lab, "b1", "run.vcf=two_samples.vcf", "sample_manifest.csv")
    _land(dirs, lab, "b2", "sample_manifest.csv=late_sample_manifest.csv")
    assert _quarantined_calls(dirs[0]) == []
    assert _calls(dirs[0]) == [
        ("lab/b1/run.vcf", 100, "NA00001", "P1"),
        ("lab/b1/run.vcf", 100, "NA00099", "P9"),
    ]
