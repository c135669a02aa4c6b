"""The VCF reader's text fast path (vcf_text) against the cyvcf2 reading of every record: the same
rows, counts, warnings and errors on every test file, and the same file-level failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rwe_assets.lib.genomics import vcf_reader, vcf_text
from rwe_assets.lib.genomics.vcf_reader import read_calls
from rwe_assets_tests.lib.genomics.conftest import COLUMNS, EDGE_VCF, HEADER, write_vcf

SHARED = Path(__file__).parents[2] / "data" / "vcf_cyvcf2_tests"
SHARED_FILES = sorted(p for p in SHARED.glob("*.vcf*") if not p.name.endswith(".tbi"))

# Every line eligible for the text path: multi-allelic, a haploid cell in a diploid record, haploid
# records, half and no calls, '.' values, a no-call with its other values dropped, an allele index
# above the ALT count (quarantined), undeclared INFO and FORMAT keys, AD longer than the alleles.
FAST_VCF = (
    HEADER
    + COLUMNS
    + "\tS1\tS2\tS3\n"
    + "chr1\t100\trs1\tA\tC,T\t50\tPASS\tAF=0.25,0.5;XX=3\tGT:AD:DP:GQ\t1/2:0,5,6:11:40\t0/0:9,0,0:9:30\t0/2:4,0,3:7:20\n"
    + "chr1\t200\t.\tG\tGA\t.\tLowQual\t.\tGT:AD:DP:GQ\t./.\t./1:.,4:4:10\t0/.:3,.:3:5\n"
    + "chrX\t300\t.\tC\tT\t60\tPASS\tAF=0.5\tGT:DP:ZZ\t1:20:7\t0|1:21:8\t1|1:22:9\n"
    + "chrX\t400\t.\tT\tG\t70\t.\t.\tGT:DP\t1:15\t0/2:30\t0:12\n"
    + "chrY\t500\t.\tA\tT\t80\tPASS\t.\tGT\t1\t.\t1\n"
    + "chr1\t600\trs6\tA\tC\t9.5\tq10;LowQual\tAF=0.1\tGT:AD:DP:GQ\t0/1:5,6,7:11:040\t1/1:0,9:9:.\t0/0:.:.:.\n"
)


@pytest.fixture(autouse=True)
def text_path_for_small_files(monkeypatch):
    """The test files are small: read them with the text path too (it skips files under 1 MiB)."""
    monkeypatch.setattr(vcf_reader, "TEXT_PATH_MIN_BYTES", 0)


def _same_as_cyvcf2(path: Path, batch_records: int = vcf_reader.BATCH_RECORDS) -> tuple:
    """(rows, counts, warnings) of the text path after checking they equal the cyvcf2 path's."""
    fast = _outcome(path, batch_records, True)
    reference = _outcome(path, batch_records, False)
    assert fast == reference
    return fast


def _outcome(path: Path, batch_records: int, text_path: bool):
    try:
        table, _, counts = read_calls(path, batch_records=batch_records, text_path=text_path)
    except Exception as error:  # the same failure, message and line included
        return type(error).__name__, str(error)
    return table.to_pylist(), counts, counts.warnings()


def _cyvcf2_unused(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("the cyvcf2 path read records")

    monkeypatch.setattr(vcf_reader, "_read_checked", fail)


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("batch_records", [2, vcf_reader.BATCH_RECORDS])
def test_shared_test_files_read_the_same(path, batch_records):
    _same_as_cyvcf2(path, batch_records)


@pytest.mark.parametrize("name", ["fast.vcf", "fast.vcf.gz"])
@pytest.mark.parametrize("batch_records", [1, 4, vcf_reader.BATCH_RECORDS])
def test_eligible_edge_cases_read_the_same_without_cyvcf2_records(tmp_path, monkeypatch, name, batch_records):
    path = write_vcf(tmp_path, name, FAST_VCF)
    reference = _outcome(path, batch_records, False)
    _cyvcf2_unused(monkeypatch)
    rows, counts, warnings = _outcome(path, batch_records, True)
    assert (rows, counts, warnings) == reference
    assert counts.allele_index_out_of_range == 1 and counts.undeclared == {"FORMAT:ZZ": 1, "INFO:XX": 1}


def test_the_edge_file_and_a_last_line_without_newline(tmp_path):
    _same_as_cyvcf2(write_vcf(tmp_path, "edge.vcf", EDGE_VCF))
    rows, _, _ = _same_as_cyvcf2(write_vcf(tmp_path, "cut.vcf", FAST_VCF.rstrip("\n")))
    assert rows[-1]["pos"] == 600


# One line each that only htslib reads exactly (what it accepts, fills or rejects): the text path
# must hand it over, or the file's rows or its error would differ.
HANDED_OVER = {
    "float_in_integer": "0/0:1.5:2:3",
    "trailing_dot": "0/0:3.:2:3",
    "letters": "0/0:ab:2:3",
    "negative": "0/0:-1:2:3",
    "extra_value": "0/0:1:2:3:4",
    "empty_value": "0/1::2:3",
    "dropped_value_in_a_call": "0/1:1,2",
    "triploid": "0/0/1:1:2:3",
    "two_digit_allele": "0/10:1:2:3",
    "ad_shorter_than_alleles": "0/1:7:2:3",
    "huge_integer": "0/1:1,2:12345678901:3",
    "two_depths": "0/1:1,2:5,6:3",
    "string_in_gt": "0/x:1:2:3",
}


@pytest.mark.parametrize("cell", HANDED_OVER.values(), ids=HANDED_OVER.keys())
@pytest.mark.parametrize("batch_records", [1, vcf_reader.BATCH_RECORDS])
def test_lines_only_htslib_reads_exactly_are_handed_over(tmp_path, cell, batch_records):
    """Mid-file (after eligible lines, so the handover starts the cyvcf2 path at the right record)."""
    odd = f"chr1\t700\t.\tA\tC\t.\t.\t.\tGT:AD:DP:GQ\t0/0:1,2:3:4\t{cell}\t0/0:1,0:1:1\n"
    path = write_vcf(tmp_path, "odd.vcf", FAST_VCF + odd + FAST_VCF.split(COLUMNS + "\tS1\tS2\tS3\n")[1])
    with pytest.raises(vcf_text.NotEligible):
        _read_alone(path, len(FAST_VCF.splitlines()))
    _same_as_cyvcf2(path, batch_records)


def _read_alone(path: Path, skip: int):
    """The text path's parse of one line (with its call values)."""
    with vcf_text.open_text(path) as handle:
        data = next(vcf_text.line_blocks(handle, skip, 1))
    block = vcf_text.parse_block(data, 3)
    calls = np.nonzero((block.alleles > 0).any(axis=2))
    vcf_text.call_values(block, calls[0], calls[1], np.array([1]))


@pytest.mark.parametrize(
    "line",
    [
        "chr1\t700\t.\tA\tC\t.\t.\t.\tGT:AD:DP:GQ\t0/1:1,2:3:4\t0/0:1,0:1:1\n",  # a column short
        "chr1\tx\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/0\t0/0\n",  # POS not a number
        "chr1\t700\t.\tA\tC\t.\t.\t.\tGT\t0/1\t0/0\t0/0\r\n",  # CRLF
    ],
    ids=["columns", "pos", "crlf"],
)
def test_malformed_lines_fail_the_file_with_the_same_error(tmp_path, line):
    outcome = _same_as_cyvcf2(write_vcf(tmp_path, "bad.vcf", FAST_VCF + line), batch_records=4)
    if line.count("\t") != 11:
        assert outcome[0] == "InputFileError" and "line 20" in outcome[1]


def test_a_truncated_bgzf_fails_the_same(tmp_path):
    path = write_vcf(tmp_path, "cut.vcf.gz", FAST_VCF * 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    _same_as_cyvcf2(path, batch_records=2)


def test_files_under_the_size_threshold_keep_the_cyvcf2_path(tmp_path, monkeypatch):
    path = write_vcf(tmp_path, "fast.vcf", FAST_VCF)
    parsed = []
    parse_block = vcf_text.parse_block
    monkeypatch.setattr(vcf_text, "parse_block", lambda *a: parsed.append(1) or parse_block(*a))
    monkeypatch.setattr(vcf_reader, "TEXT_PATH_MIN_BYTES", path.stat().st_size + 1)
    small = read_calls(path)[0].to_pylist()
    assert not parsed
    monkeypatch.setattr(vcf_reader, "TEXT_PATH_MIN_BYTES", path.stat().st_size)
    assert read_calls(path)[0].to_pylist() == small and parsed


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("lines", [1, 2, 100])
def test_line_blocks_cut_whole_lines_after_the_header(monkeypatch, block_bytes, lines):
    import io

    monkeypatch.setattr(vcf_text, "_READ_BYTES", 5)  # pieces that cut lines and the header
    text = b"##h1\n#h2\n" + b"".join(b"l%d\t%s\n" % (i, b"x" * (i % 13)) for i in range(40)) + b"last"
    blocks = list(vcf_text.line_blocks(io.BytesIO(text), 2, lines, block_bytes))
    assert b"".join(blocks) == text[len(b"##h1\n#h2\n") :] + b"\n"
    assert all(b.endswith(b"\n") and 1 <= b.count(b"\n") <= lines for b in blocks)
