"""Parsing as tolerant as bcftools (issue 17, items 3, 4 and the BCF / .vcf.bgz part of 7): undeclared
INFO/FORMAT fields are read as strings and counted; a failure inside one file fails that file alone,
with its line; a GT allele index above the record's ALT count is quarantined with a reason code; BCF
and .vcf.bgz files land like VCFs."""

from __future__ import annotations

from pathlib import Path

import cyvcf2
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.genomics import staging, vcf_reader
from rwe_assets.lib.raw_ingest import Status, ingest_batch, read_manifest, reconcile_files
from rwe_assets.synthetic.formats.lab import bgzf
from rwe_assets_tests.lib.genomics.conftest import EDGE_VCF, manifest

CYVCF2_FILES = Path(__file__).parents[2] / "data" / "vcf_cyvcf2_tests"

# GT is the only declared FORMAT field: DP, AD and GQ are used undeclared, as are INFO XX (a value)
# and FOO (no value). 3 meta lines + #CHROM = 4 header lines, so record n is on line 4 + n.
UNDECLARED_VCF = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=chr1,length=248956422>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tU1\tU2\n"
    "chr1\t100\t.\tA\tC\t50\tPASS\tXX=3;FOO\tGT:DP:AD:GQ\t0/1:12:5,7:30\t1/1:8:0,8:20\n"
    "chr1\t200\t.\tG\tT,C\t50\tPASS\t.\tGT:DP:AD\t1/2:12:2,5,5\t0/1:.:4,5,0\n"
)

# Record 1 has one ALT and S1 calls allele 2; record 2 is multi-allelic (same chunk); record 3 has one
# ALT and S1 calls 1/2 (allele 1 is a good call, allele 2 is out of range).
OUT_OF_RANGE_VCF = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=chr1,length=248956422>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tR1\tR2\n"
    "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/2\t0/1\n"
    "chr1\t200\t.\tG\tT,C\t50\tPASS\t.\tGT\t1/2\t0/1\n"
    "chr1\t300\t.\tT\tA\t50\tPASS\t.\tGT\t1/2\t2\n"
)


def _land(landing: Path, batch: str, files: dict[str, str | bytes]) -> Path:
    folder = landing / "lab" / batch
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    return folder


def _raw(lake_dir: Path, *parts: str) -> list[dict]:
    table = lake.read_table(lake.table_path(lake_dir, "raw", *parts))
    return [] if table is None else table.to_pylist()


def _counts(lake_dir: Path, relative: str) -> dict[str, str]:
    return {
        r["item_id"]: r["number"]
        for r in _raw(lake_dir, "lab", "vcf_header")
        if r["section"] == "count" and r["_source_file"] == relative
    }


# --------------------------------------------------------------------------- item 3


def test_undeclared_format_and_info_fields_are_read_as_strings_and_counted(dirs, lab):
    lake_dir, landing = dirs
    # the file with undeclared fields sorts first: the batch's other files must still land
    _land(landing, "b1", {
        "a_undeclared.vcf": UNDECLARED_VCF,
        "b_edge.vcf": EDGE_VCF,
        "sample_manifest.csv": manifest([("U1", "P1", "", "a_undeclared.vcf"), ("U2", "P2", "", "a_undeclared.vcf")]),
    })  # fmt: skip
    report = ingest_batch(lake_dir, landing, lab, "b1")
    by_name = {Path(f.relative_path).name: f for f in report.files}
    result = by_name["a_undeclared.vcf"]
    assert result.status == Status.INGESTED and result.rows_stored == {"variant_call": 5}
    assert by_name["b_edge.vcf"].status == Status.INGESTED
    assert result.warnings == [
        "undeclared INFO field FOO (1 record) read as String",
        "undeclared INFO field XX (1 record) read as String",
        "undeclared FORMAT field AD (2 records) read as String",
        "undeclared FORMAT field DP (2 records) read as String",
        "undeclared FORMAT field GQ (1 record) read as String",
    ]
    assert [r["status"] for r in read_manifest(lake_dir, "lab").to_pylist()] == [Status.INGESTED] * 3
    calls = [
        r for r in _raw(lake_dir, "lab", "variant_call") if r["_source_file"] == "lab/b1/a_undeclared.vcf"
    ]
    got = [
        (
            c["_line_number"],
            c["sample_id"],
            c["alt_index"],
            c["depth"],
            c["allele_depths"],
            c["genotype_quality"],
        )
        for c in calls
    ]
    assert got == [
        (5, "U1", 1, 12, [5, 7], 30),
        (5, "U2", 1, 8, [0, 8], 20),
        (6, "U1", 1, 12, [2, 5, 5], None),
        (6, "U1", 2, 12, [2, 5, 5], None),
        (6, "U2", 1, None, [4, 5, 0], None),
    ]
    assert calls[0]["info"] == '{"XX":"3","FOO":true}'
    counts = _counts(lake_dir, "lab/b1/a_undeclared.vcf")
    assert (counts["undeclared_fields"], counts["undeclared_FORMAT:DP"], counts["undeclared_INFO:FOO"]) == (
        "5", "2", "1",
    )  # fmt: skip
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))
    report = staging.stage_genomics(lake_dir)
    assert report.variants + report.variants_quarantined == 5 + 11


def test_undeclared_string_values_that_are_not_integers_read_as_null(tmp_path):
    text = UNDECLARED_VCF.replace("0/1:12:5,7:30", "0/1:deep:5,x:high")
    path = tmp_path / "odd.vcf"
    path.write_text(text)
    table, _, counts = vcf_reader.read_calls(path)
    first = table.to_pylist()[0]
    assert (first["depth"], first["allele_depths"], first["genotype_quality"]) == (None, [5, None], None)
    assert counts.undeclared == {"INFO:XX": 1, "INFO:FOO": 1, "FORMAT:DP": 2, "FORMAT:AD": 2, "FORMAT:GQ": 1}


def test_a_file_failing_mid_way_fails_alone_with_its_line(dirs, lab, monkeypatch):
    lake_dir, landing = dirs
    _land(landing, "b1", {
        "a_breaks.vcf": EDGE_VCF,
        "b_edge.vcf": EDGE_VCF.replace("chr1\t300", "chr1\t301"),
        "sample_manifest.csv": manifest([("S1", "P1", "GRCh38", "a_breaks.vcf")]),
    })  # fmt: skip
    add_record = vcf_reader._add_record

    def breaks_at_pos_300(columns, variant, *args):  # an unexpected failure inside one record
        if variant.POS == 300 and len(variant.ALT) == 1 and variant.CHROM == "chr1":
            raise ValueError("boom")
        return add_record(columns, variant, *args)

    monkeypatch.setattr(vcf_reader, "_add_record", breaks_at_pos_300)
    report = ingest_batch(lake_dir, landing, lab, "b1")
    by_name = {Path(f.relative_path).name: f for f in report.files}
    failed = by_name["a_breaks.vcf"]
    assert failed.status == Status.FAILED and failed.total_stored == 0
    assert failed.error == "lab/b1/a_breaks.vcf line 16: could not read the record (ValueError)"
    assert by_name["b_edge.vcf"].status == Status.INGESTED and by_name["b_edge.vcf"].rows_stored == {
        "variant_call": 11
    }
    rows = read_manifest(lake_dir, "lab").to_pylist()
    assert sorted((Path(r["relative_path"]).name, r["status"]) for r in rows) == [
        ("a_breaks.vcf", Status.FAILED), ("b_edge.vcf", Status.INGESTED), ("sample_manifest.csv", Status.INGESTED),
    ]  # fmt: skip
    assert {r["_source_file"] for r in _raw(lake_dir, "lab", "variant_call")} == {"lab/b1/b_edge.vcf"}
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))


def test_a_failure_after_the_records_names_the_file(dirs, lab, monkeypatch):
    lake_dir, landing = dirs
    _land(landing, "b1", {"a.vcf": EDGE_VCF, "b.vcf": EDGE_VCF.replace("chr1\t100", "chr1\t101")})

    def broken(*args):
        raise KeyError("columns")

    monkeypatch.setattr(vcf_reader, "_batch_table", broken)
    report = ingest_batch(lake_dir, landing, lab, "b1")
    assert [f.status for f in report.files] == [Status.FAILED, Status.FAILED]
    assert report.files[0].error.startswith("lab/b1/a.vcf line 14: could not read the record (KeyError)")
    assert len(read_manifest(lake_dir, "lab")) == 2


# --------------------------------------------------------------------------- item 4


def test_allele_index_above_the_alt_count_is_counted_by_the_reader(tmp_path):
    path = tmp_path / "single.vcf"
    path.write_text(OUT_OF_RANGE_VCF.replace("chr1\t200\t.\tG\tT,C\t50\tPASS\t.\tGT\t1/2\t0/1\n", ""))
    table, _, counts = vcf_reader.read_calls(path)
    assert [(r["record_number"], r["sample_id"], r["alt_index"]) for r in table.to_pylist()] == [
        (1, "R2", 1),
        (2, "R1", 1),
    ]
    assert counts.allele_index_out_of_range == 3  # R1 0/2, R1 1/2 (k=2), R2 2
    assert [(o.record_number, o.sample_index, o.allele, o.alt_count) for o in counts.out_of_range] == [
        (1, 0, 2, 1),
        (2, 0, 2, 1),
        (2, 1, 2, 1),
    ]


def test_allele_index_out_of_range_is_quarantined_and_the_chunk_stages(dirs, lab):
    lake_dir, landing = dirs
    _land(landing, "b1", {
        "run.vcf": OUT_OF_RANGE_VCF,
        "sample_manifest.csv": manifest([("R1", "P1", "GRCh38", "run.vcf"), ("R2", "P2", "GRCh38", "run.vcf")]),
    })  # fmt: skip
    (result, _) = ingest_batch(lake_dir, landing, lab, "b1").files
    assert result.status == Status.INGESTED
    assert (result.records_read, result.rows_stored, result.rows_quarantined) == (8, {"variant_call": 5}, 3)
    quarantine = _raw(lake_dir, "_quarantine")
    assert [(q["reason_code"], q["field"], q["_line_number"], q["_source_file"]) for q in quarantine] == [
        ("ALLELE_INDEX_OUT_OF_RANGE", "GT", 5, "lab/b1/run.vcf"),
        ("ALLELE_INDEX_OUT_OF_RANGE", "GT", 7, "lab/b1/run.vcf"),
        ("ALLELE_INDEX_OUT_OF_RANGE", "GT", 7, "lab/b1/run.vcf"),
    ]
    assert quarantine[0]["detail"] == "sample column 1 (R1): GT allele 2, the record has 1 ALT allele"
    assert _counts(lake_dir, "lab/b1/run.vcf")["allele_index_out_of_range"] == "3"
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))
    report = staging.stage_genomics(lake_dir)  # the multi-allelic record of the same chunk stages
    assert (report.variants, report.variants_quarantined) == (5, 0)
    staged = sorted(
        (v["record_number"], v["sample_id"], v["alt"])
        for v in lake.read_table(lake.table_path(lake_dir, "staging", "variant")).to_pylist()
    )
    assert staged == [(1, "R2", "C"), (2, "R1", "C"), (2, "R1", "T"), (2, "R2", "T"), (3, "R1", "A")]
    assert staging.reconcile(lake_dir) == [("lab/b1/run.vcf", 5, 5, 0)]


# --------------------------------------------------------------------------- item 7: BCF and .vcf.bgz


def _bcf(tmp_path: Path, text: str) -> bytes:
    source = tmp_path / "src.vcf"
    source.write_text(text)
    template = cyvcf2.VCF(str(source))
    out = tmp_path / "out.bcf"
    writer = cyvcf2.Writer(str(out), template, mode="wb")
    for variant in template:
        writer.write_record(variant)
    writer.close()
    template.close()
    return out.read_bytes()


def test_bcf_and_vcf_bgz_land_like_vcfs(dirs, lab, tmp_path):
    lake_dir, landing = dirs
    _land(landing, "b1", {
        "edge.bcf": _bcf(tmp_path, EDGE_VCF),
        "edge.bcf.csi": b"index",
        "other.vcf.bgz": bgzf(EDGE_VCF.replace("chr1\t100", "chr1\t101").encode()),
        "other.vcf.bgz.tbi": b"index",
    })  # fmt: skip
    report = ingest_batch(lake_dir, landing, lab, "b1")
    by_name = {Path(f.relative_path).name: f for f in report.files}
    assert {n: f.status for n, f in by_name.items()} == {
        "edge.bcf": Status.INGESTED, "edge.bcf.csi": Status.IGNORED,
        "other.vcf.bgz": Status.INGESTED, "other.vcf.bgz.tbi": Status.IGNORED,
    }  # fmt: skip
    for name in ("edge.bcf", "other.vcf.bgz"):
        assert by_name[name].rows_stored == {"variant_call": 11}, name
    calls = [r for r in _raw(lake_dir, "lab", "variant_call") if r["_source_file"] == "lab/b1/edge.bcf"]
    # a BCF record's line is the one it would have in the VCF text (header lines + record number)
    assert [c["_line_number"] for c in calls][:4] == [14, 14, 14, 15]
    assert [(c["genotype"], c["allele_depths"]) for c in calls][:2] == [
        ("1/2", [0, 5, 6]),
        ("1/2", [0, 5, 6]),
    ]
    header = [r for r in _raw(lake_dir, "lab", "vcf_header") if r["_source_file"] == "lab/b1/edge.bcf"]
    assert {r["genome_build"] for r in header} == {"GRCh38"}
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))


def test_a_damaged_bcf_fails_with_its_record(dirs, lab, tmp_path):
    lake_dir, landing = dirs
    data = _bcf(tmp_path, EDGE_VCF)
    _land(landing, "b1", {"cut.bcf": data[: len(data) - 60]})
    (result,) = ingest_batch(lake_dir, landing, lab, "b1").files
    assert result.status == Status.FAILED and result.error.startswith("lab/b1/cut.bcf line ")
    assert "truncated or corrupt compressed data" in result.error


# --------------------------------------------------------------------------- the cyvcf2 edge-case files


def test_the_cyvcf2_edge_case_files_land_in_one_batch_and_reconcile(dirs, lab):
    lake_dir, landing = dirs
    names = sorted(p.name for p in CYVCF2_FILES.iterdir() if ".vcf" in p.name)
    if not names:
        pytest.skip("no cyvcf2 test files")
    _land(landing, "b1", {name: (CYVCF2_FILES / name).read_bytes() for name in names})
    report = ingest_batch(lake_dir, landing, lab, "b1")
    assert sorted(Path(f.relative_path).name for f in report.files) == names
    assert [f.relative_path for f in report.files if f.status == Status.FAILED] == []
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, lab))
