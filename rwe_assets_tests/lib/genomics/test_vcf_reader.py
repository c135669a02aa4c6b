"""The raw VCF reader: one row per (record, sample, ALT allele) with a non-reference genotype."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe_assets.lib.genomics.vcf_reader import read_calls
from rwe_assets_tests.lib.genomics.conftest import EDGE_VCF, write_vcf

# (record, sample, alt_index, genotype, depth, allele depths, GQ): the right rows, written by hand.
EXPECTED = [
    (1, "S1", 1, "1/2", 11, [0, 5, 6], 40),
    (1, "S1", 2, "1/2", 11, [0, 5, 6], 40),
    (1, "S3", 2, "0/2", 7, [4, 0, 3], 20),
    (2, "S2", 1, "./1", 4, [None, 4], 10),
    (3, "S1", 1, "1|0", 20, None, None),
    (3, "S2", 1, "0|1", 21, None, None),
    (3, "S3", 1, "1|1", 22, None, None),
    (4, "S1", 1, "1", 15, None, None),
    (4, "S2", 1, "0/1", 30, None, None),
    (5, "S1", 1, "1", None, None, None),
    (5, "S3", 1, "1", None, None, None),
]


def _rows(table):
    return [
        (r["record_number"], r["sample_id"], r["alt_index"], r["genotype"], r["depth"], r["allele_depths"],
         r["genotype_quality"])
        for r in table.to_pylist()
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["edge.vcf", "edge.vcf.gz"])
def test_calls_of_multiallelic_missing_phased_and_haploid_genotypes(tmp_path, name):
    table, header, counts = read_calls(write_vcf(tmp_path, name, EDGE_VCF))
    assert _rows(table) == EXPECTED
    assert (counts.records, counts.genotypes, counts.calls, counts.hom_ref, counts.no_call) == (
        5,
        15,
        11,
        3,
        2,
    )
    assert header.samples == ["S1", "S2", "S3"] and header.line_count == 13 and header.build == "GRCh38"


def test_record_fields_are_kept_as_read(tmp_path):
    table, _, _ = read_calls(write_vcf(tmp_path, "edge.vcf", EDGE_VCF))
    first, insertion = table.to_pylist()[0], table.to_pylist()[3]
    assert (first["chrom"], first["pos"], first["id"], first["ref"], first["alt"]) == (
        "chr1",
        100,
        "rs1",
        "A",
        "C,T",
    )
    assert (first["qual"], first["filter"], first["format"]) == (50.0, "PASS", "GT:AD:DP:GQ")
    assert first["info"] == '{"AF":[0.25,0.5]}'
    assert (insertion["id"], insertion["qual"], insertion["filter"], insertion["info"]) == (
        ".",
        None,
        "LowQual",
        "{}",
    )


def test_batches_do_not_change_the_rows(tmp_path):
    from rwe_assets.lib.genomics import vcf_reader

    path = write_vcf(tmp_path, "edge.vcf", EDGE_VCF)
    vcf, header = vcf_reader.open_vcf(path, "edge.vcf")
    counts = vcf_reader.VcfCounts()
    batches = list(vcf_reader.call_batches(path, "edge.vcf", vcf, header, counts, batch_records=2))
    assert [b.num_rows for b in batches] == [4, 5, 2]  # records 1-2, 3-4, 5
    rows = [row for b in batches for row in _rows(b)]
    assert rows == EXPECTED


SHARED = str(Path(__file__).parents[2] / "data" / "vcf_cyvcf2_tests")


def test_shared_edge_case_files_count_like_cyvcf2(tmp_path):
    """Half calls (decomposed.vcf), a record without GT (test-no-genotypes.vcf) and a hom-alt of the
    second ALT with a symbolic allele (test-multiallelic-homozygous-alt.vcf.gz)."""
    from pathlib import Path

    if not Path(SHARED).is_dir():
        pytest.skip("shared cyvcf2 test files not present")
    table, _, counts = read_calls(Path(SHARED) / "decomposed.vcf")
    assert [(r["sample_id"], r["genotype"]) for r in table.to_pylist()] == [
        ("sample3", "1/."),
        ("sample4", "./1"),
    ]
    assert (counts.hom_ref, counts.no_call) == (2, 1)
    table, _, counts = read_calls(Path(SHARED) / "test-no-genotypes.vcf")
    assert table.num_rows == 0 and counts.records_without_genotypes == 1
    table, _, _ = read_calls(Path(SHARED) / "test-multiallelic-homozygous-alt.vcf.gz")
    assert [(r["alt"], r["alt_index"], r["genotype"]) for r in table.to_pylist()] == [("A,<*:DEL>", 2, "2/2")]
