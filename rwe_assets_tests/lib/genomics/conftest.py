"""Hand-written VCFs and a tiny lab landing zone, always under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe_assets.lib.sources import SourceSpec, load_registry
from rwe_assets.synthetic.formats.lab import bgzf

HEADER = """##fileformat=VCFv4.2
##reference=GRCh38
##contig=<ID=chr1,length=248956422>
##contig=<ID=chrX,length=156040895>
##contig=<ID=chrY,length=57227415>
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=LowQual,Description="Low quality">
##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">
"""
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"

# Header: 12 meta lines + #CHROM = 13 lines, so record n is on line 13 + n.
EDGE_VCF = (
    HEADER
    + COLUMNS
    + "\tS1\tS2\tS3\n"
    # 1: multi-allelic; S1 1/2 (two calls), S2 hom-ref, S3 0/2
    + "chr1\t100\trs1\tA\tC,T\t50\tPASS\tAF=0.25,0.5\tGT:AD:DP:GQ\t1/2:0,5,6:11:40\t0/0:9,0,0:9:30\t0/2:4,0,3:7:20\n"
    # 2: missing genotypes: S1 no-call, S2 half call ./1, S3 0/.
    + "chr1\t200\t.\tG\tGA\t.\tLowQual\t.\tGT:AD:DP:GQ\t./.:.:.:.\t./1:.,4:4:10\t0/.:3,.:3:5\n"
    # 3: phased: S1 1|0, S2 0|1, S3 1|1
    + "chr1\t300\t.\tCT\tC\t60\tPASS\tAF=0.5\tGT:DP\t1|0:20\t0|1:21\t1|1:22\n"
    # 4: haploid chrX (S1 male, hemizygous alt; S2 diploid het; S3 haploid ref)
    + "chrX\t400\t.\tT\tG\t70\tPASS\t.\tGT:DP\t1:15\t0/1:30\t0:12\n"
    # 5: haploid chrY, S1 alt, S2 no-call, S3 alt
    + "chrY\t500\t.\tA\tT\t80\tPASS\t.\tGT\t1\t.\t1\n"
)


@pytest.fixture
def lab() -> SourceSpec:
    return load_registry().get("lab")


def write_vcf(folder: Path, name: str, text: str) -> Path:
    """Write text as name; a name ending .gz is BGZF-compressed like a lab's bgzip."""
    folder.mkdir(parents=True, exist_ok=True)
    data = bgzf(text.encode()) if name.endswith(".gz") else text.encode()
    path = folder / name
    path.write_bytes(data)
    return path


MANIFEST_HEADER = "SAMPLE_ID,SOURCE_PERSON_ID,SPECIMEN_TYPE,SPECIMEN_DATE,TEST_NAME,GENOME_BUILD,VCF_FILE\n"


def manifest(rows: list[tuple[str, str, str, str]]) -> str:
    """rows: (sample, person, build, vcf file)."""
    return MANIFEST_HEADER + "".join(
        f"{sample},{person},Blood,2024-05-01,Hereditary Cancer Panel,{build},{vcf}\n"
        for sample, person, build, vcf in rows
    )


def land_lab(landing: Path, batch: str, files: dict[str, str]) -> Path:
    """Write a lab batch: VCF text through write_vcf (BGZF for .gz), the other files as they are."""
    folder = landing / "lab" / batch
    for name, text in files.items():
        if name.endswith((".vcf", ".vcf.gz")):
            write_vcf(folder, name, text)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    return folder
