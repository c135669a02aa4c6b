"""Raw ingest of a lab batch (manifest + VCFs) and what bad input does: a clear error naming file and
line, or a quarantined row with a reason; nothing already loaded is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.genomics import vcf_reader
from rwe_assets.lib.genomics.staging import stage_genomics
from rwe_assets.lib.raw_ingest import Status, ingest_batch, read_manifest, reconcile_files
from rwe_assets_tests.lib.genomics.conftest import COLUMNS, EDGE_VCF, HEADER, land_lab, manifest, write_vcf

SHARED_GZ = (
    Path(__file__).parents[2] / "data" / "vcf_cyvcf2_tests" / "test-multiallelic-homozygous-alt.vcf.gz"
)
GOOD_MANIFEST = manifest([("S1", "P1", "GRCh38", "edge.vcf.gz"), ("S2", "P2", "GRCh38", "edge.vcf.gz"),
                          ("S3", "P3", "GRCh38", "edge.vcf.gz")])  # fmt: skip


def _calls(lake_dir: Path) -> int:
    table = lake.read_table(lake.table_path(lake_dir, "raw", "lab", "variant_call"))
    return 0 if table is None else table.num_rows


def test_lab_batch_ingests_vcf_and_manifest_and_reconciles(dirs, lab):
    lake_dir, landing = dirs
    folder = land_lab(landing, "b1", {"edge.vcf.gz": EDGE_VCF, "sample_manifest.csv": GOOD_MANIFEST})
    (folder / "edge.vcf.gz.tbi").write_bytes(b"index")
    report = ingest_batch(lake_dir, landing, lab, "b1")
    by_name = {Path(f.relative_path).name: f for f in report.files}
    assert by_name["edge.vcf.gz"].status == Status.INGESTED
    assert (
        by_name["edge.vcf.gz"].rows_stored == {"variant_call": 11} and by_name["edge.vcf.gz"].lines_read == 18
    )
    assert by_name["edge.vcf.gz.tbi"].status == Status.IGNORED
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))
    rows = lake.read_table(lake.table_path(lake_dir, "raw", "lab", "variant_call")).to_pylist()
    assert [r["_line_number"] for r in rows][:4] == [14, 14, 14, 15]
    header = lake.read_table(lake.table_path(lake_dir, "raw", "lab", "vcf_header")).to_pylist()
    counts = {r["item_id"]: int(r["number"]) for r in header if r["section"] == "count"}
    assert (counts["calls"], counts["hom_ref"], counts["no_call"]) == (11, 3, 2)
    assert {r["genome_build"] for r in header} == {"GRCh38"}
    # the same batch again adds nothing
    assert ingest_batch(lake_dir, landing, lab, "b1").files == [] and _calls(lake_dir) == 11


def _fails(dirs, lab, name: str, data: bytes) -> str:
    """Land a good batch, then a batch holding one bad file: the bad file fails with its error and
    the good batch's rows stay."""
    lake_dir, landing = dirs
    land_lab(landing, "b1", {"edge.vcf.gz": EDGE_VCF, "sample_manifest.csv": GOOD_MANIFEST})
    ingest_batch(lake_dir, landing, lab, "b1")
    folder = landing / "lab" / "b2"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    (result,) = ingest_batch(lake_dir, landing, lab, "b2").files
    assert result.status == Status.FAILED and result.total_stored == 0
    assert _calls(lake_dir) == 11
    assert read_manifest(lake_dir, "lab").to_pylist()[-1]["status"] == Status.FAILED
    return result.error


def test_truncated_bgzip_mid_block_names_file_and_line(dirs, lab):
    data = (
        SHARED_GZ.read_bytes()
        if SHARED_GZ.exists()
        else write_vcf(dirs[1].parent, "x.vcf.gz", EDGE_VCF).read_bytes()
    )
    error = _fails(dirs, lab, "cut.vcf.gz", data[: len(data) // 2])
    assert error.startswith("lab/b2/cut.vcf.gz line ") and "truncated or corrupt" in error


def test_bgzip_cut_at_a_block_boundary_is_truncated_too(dirs, lab, tmp_path):
    big = (
        HEADER
        + COLUMNS
        + "\tS1\n"
        + "".join(f"chr1\t{p}\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n" for p in range(1, 6000))
    )
    data = write_vcf(tmp_path / "src", "big.vcf.gz", big).read_bytes()
    error = _fails(dirs, lab, "cut.vcf.gz", data[:-28])  # the 28-byte BGZF end-of-file block removed
    assert (
        error
        == "lab/b2/cut.vcf.gz line 6013: truncated BGZF: the data ends after line 6012 without the BGZF end-of-file block"
    )


def test_header_without_chrom_line(dirs, lab):
    text = HEADER + "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
    error = _fails(dirs, lab, "nochrom.vcf", text.encode())
    assert error.startswith("lab/b2/nochrom.vcf line 13: expected the #CHROM header line")


def test_record_with_fewer_columns_than_samples(dirs, lab):
    text = (
        HEADER
        + COLUMNS
        + "\tS1\tS2\n"
        + "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\t1/1\nchr1\t200\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
    )
    error = _fails(dirs, lab, "short.vcf", text.encode())
    assert (
        error
        == "lab/b2/short.vcf line 15: expected 11 tab-separated columns (8 fixed + FORMAT + 2 samples), found 10"
    )


def _stage_batch(dirs, lab, vcf_text: str, manifest_text: str):
    lake_dir, landing = dirs
    land_lab(landing, "b1", {"run.vcf": vcf_text, "sample_manifest.csv": manifest_text})
    ingest_batch(lake_dir, landing, lab, "b1")
    report = stage_genomics(lake_dir)
    quarantine = lake.read_table(lake.table_path(lake_dir, "staging", "variant_quarantine")).to_pylist()
    specimens = lake.read_table(lake.table_path(lake_dir, "staging", "specimen_quarantine")).to_pylist()
    return report, quarantine, specimens


def test_unknown_contig_is_quarantined_with_line_and_field(dirs, lab):
    text = (
        HEADER
        + COLUMNS
        + "\tS1\n"
        + "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\nchrZ\t5\t.\tA\tC\t50\tPASS\t.\tGT\t1/1\n"
    )
    report, quarantine, _ = _stage_batch(dirs, lab, text, manifest([("S1", "P1", "GRCh38", "run.vcf")]))
    assert (report.variants, report.variants_quarantined) == (1, 1)
    assert [(q["reason_code"], q["field"], q["_line_number"], q["_source_file"]) for q in quarantine] == [
        ("UNKNOWN_CONTIG", "CHROM", 15, "lab/b1/run.vcf")
    ]


def test_samples_missing_from_manifest_or_vcf_and_build_mismatch(dirs, lab):
    rows = [
        ("S1", "P1", "GRCh37", "run.vcf"),
        ("S2", "P2", "GRCh38", "run.vcf"),
        ("S9", "P9", "GRCh38", "run.vcf"),
    ]
    report, quarantine, specimens = _stage_batch(dirs, lab, EDGE_VCF, manifest(rows))
    reasons = sorted({(q["reason_code"], q["field"], q["sample_id"]) for q in quarantine})
    assert reasons == [
        ("BUILD_MISMATCH", "GENOME_BUILD", "S1"),  # the header says GRCh38
        ("SAMPLE_NOT_IN_MANIFEST", "sample_id", "S3"),
    ]
    assert [(s["reason_code"], s["sample_id"]) for s in specimens] == [("SAMPLE_NOT_IN_VCF", "S9")]
    assert report.variants + report.variants_quarantined == 11  # raw = staged + quarantined
    assert report.variants == 3  # S2 calls: records 2, 3 and 4 (a no-call at 5)


def test_staged_variants_of_the_edge_file(dirs, lab):
    rows = [(s, f"P{s}", "GRCh38", "run.vcf") for s in ("S1", "S2", "S3")]
    _stage_batch(dirs, lab, EDGE_VCF, manifest(rows))
    staged = lake.read_table(lake.table_path(dirs[0], "staging", "variant")).to_pylist()
    got = sorted(
        (v["record_number"], v["sample_id"], v["pos"], v["ref"], v["alt"], v["variant_type"], v["zygosity"],
         v["phased"], v["filter_pass"], v["alt_read_depth"], v["allele_frequency"])
        for v in staged
    )  # fmt: skip
    assert got == [
        (1, "S1", 100, "A", "C", "SNV", "het", False, True, 5, 0.25),
        (1, "S1", 100, "A", "T", "SNV", "het", False, True, 6, 0.5),
        (1, "S3", 100, "A", "T", "SNV", "het", False, True, 3, 0.5),
        (2, "S2", 200, "G", "GA", "insertion", "half_call", False, False, 4, None),
        (3, "S1", 300, "CT", "C", "deletion", "het", True, True, None, 0.5),
        (3, "S2", 300, "CT", "C", "deletion", "het", True, True, None, 0.5),
        (3, "S3", 300, "CT", "C", "deletion", "hom_alt", True, True, None, 0.5),
        (4, "S1", 400, "T", "G", "SNV", "hemizygous", False, True, None, None),
        (4, "S2", 400, "T", "G", "SNV", "het", False, True, None, None),
        (5, "S1", 500, "A", "T", "SNV", "hemizygous", False, True, None, None),
        (5, "S3", 500, "A", "T", "SNV", "hemizygous", False, True, None, None),
    ]


def test_vcf_reader_refuses_a_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "plain.vcf.gz"
    path.write_text(EDGE_VCF)
    with pytest.raises(
        Exception, match=r"plain.vcf.gz line 1: file name ends .gz but the content is not gzip"
    ):
        vcf_reader.read_calls(path)
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)


def test_vcf_without_records_ingests_zero_calls_and_its_header(dirs, lab):
    lake_dir, landing = dirs
    land_lab(landing, "b1", {"empty.vcf": HEADER + COLUMNS + "\tS1\n"})
    (result,) = ingest_batch(lake_dir, landing, lab, "b1").files
    assert (result.status, result.rows_stored, result.lines_read) == (
        Status.INGESTED,
        {"variant_call": 0},
        13,
    )
    header = lake.read_table(lake.table_path(lake_dir, "raw", "lab", "vcf_header")).to_pylist()
    assert [r["item_id"] for r in header if r["section"] == "sample"] == ["S1"]
