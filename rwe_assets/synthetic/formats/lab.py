"""The genomics lab: a sample manifest (one row per sample, with the demographics of the test
order) and, per chunk of persons, one multi-sample VCF 4.2 (`run_<chunk>.vcf.gz`, BGZF, with a tabix
index `.tbi`) holding the panel sites where at least one sample carries an ALT allele.

INFO keys, one value per ALT allele unless said: GENE (gene symbol, one per record), HGVSC, HGVSP
(HGVS c. and p. on the MANE transcript), CSQ_TERM (Sequence Ontology consequence), CLNSIG (ClinVar
clinical significance, underscores for spaces), and the usual AC, AN, AF.
FORMAT: GT:AD:DP:GQ.

BGZF is written here (deflate blocks with the BC extra field, fixed header, the standard EOF
block), so bytes are deterministic; the .tbi is built by the htslib that ships inside cyvcf2
(`bcf_index_build3`), reached through ctypes.
"""

from __future__ import annotations

import ctypes
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import Chunk, Piece, no_masks, render_csv
from rwe_assets.synthetic.util import digits, iso_dates, take

SOURCE = "lab"
GENOME_BUILD = "GRCh38"
MANIFEST = [
    "SAMPLE_ID",
    "SOURCE_PERSON_ID",
    "SPECIMEN_TYPE",
    "SPECIMEN_DATE",
    "TEST_NAME",
    "GENOME_BUILD",
    "FIRST_NAME",
    "LAST_NAME",
    "BIRTH_DATE",
    "SEX",
    "ORDERING_SITE",
    "ORDERING_SITE_PATIENT_ID",
    "VCF_FILE",
]
ORDERING_SITES = ("site_a", "site_b")
OUTSIDE_SITE = "outside_clinic"
# GRCh38 primary assembly lengths
CONTIGS = (
    ("chr1", 248956422), ("chr2", 242193529), ("chr3", 198295559), ("chr4", 190214555),
    ("chr5", 181538259), ("chr6", 170805979), ("chr7", 159345973), ("chr8", 145138636),
    ("chr9", 138394717), ("chr10", 133797422), ("chr11", 135086622), ("chr12", 133275309),
    ("chr13", 114364328), ("chr14", 107043718), ("chr15", 101991189), ("chr16", 90338345),
    ("chr17", 83257441), ("chr18", 80373285), ("chr19", 58617616), ("chr20", 64444167),
    ("chr21", 46709983), ("chr22", 50818468), ("chrX", 156040895), ("chrY", 57227415), ("chrM", 16569),
)  # fmt: skip
CONTIG_ORDER = {name: i for i, (name, _) in enumerate(CONTIGS)}
NO_CALL_RATE = 0.004
BGZF_BLOCK = 0xFF00
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


@dataclass
class VcfOutput:
    name: str
    data: bytes  # BGZF bytes of the whole file
    records: int
    calls: int  # non-ref genotype calls, per (record, sample, ALT allele)
    genotypes: pl.DataFrame  # truth: one row per such call


def vcf_name(chunk_index: int) -> str:
    return f"run_{chunk_index:05d}.vcf.gz"


def bgzf(data: bytes, level: int = 6) -> bytes:
    """BGZF compression: independent deflate blocks of at most 0xff00 input bytes, then EOF."""
    out = []
    for start in range(0, len(data), BGZF_BLOCK):
        block = data[start : start + BGZF_BLOCK]
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        deflated = compressor.compress(block) + compressor.flush()
        header = struct.pack("<BBBBIBBHBBHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(deflated) + 25)
        out.append(header + deflated + struct.pack("<II", zlib.crc32(block), len(block)))
    out.append(BGZF_EOF)
    return b"".join(out)


def tabix_index(path: Path) -> Path | None:
    """Build path + '.tbi' with htslib's bcf_index_build3 (from the cyvcf2 wheel). None if that
    htslib cannot be reached."""
    try:
        import cyvcf2.cyvcf2 as module

        library = ctypes.CDLL(module.__file__)
        build = library.bcf_index_build3
    except (ImportError, OSError, AttributeError):
        return None
    build.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    build.restype = ctypes.c_int
    status = build(str(path).encode(), None, 0, 0)
    if status != 0:
        raise RuntimeError(f"{path}: htslib could not build a tabix index (status {status})")
    return Path(str(path) + ".tbi")


def render_manifest(chunk: Chunk, vcf_file: str) -> Piece:
    lab = chunk.lab
    records = chunk.records[SOURCE]
    index = records.index(len(chunk.persons))
    rec = index[lab.person, lab.record]
    tests = chunk.catalogue.genetic_tests
    n = len(lab.person)
    site_patient = np.full(n, "", dtype=object)
    for s, source in ((0, "ehr_site_a"), (1, "ehr_site_b")):
        rows = np.flatnonzero(lab.ordering_site == s)
        if len(rows) == 0:
            continue
        site_records = chunk.records[source]
        site_index = site_records.index(len(chunk.persons))
        dup_day = chunk.membership.a_dup_day if s == 0 else chunk.membership.b_dup_day
        person = lab.person[rows]
        which = (lab.day[rows] >= dup_day[person]).astype(np.int64)
        row = site_index[person, which]
        row = np.where(row >= 0, row, site_index[person, 0])
        site_patient[rows] = site_records.ids.gather(row).to_numpy()
    outside = np.flatnonzero(lab.ordering_site < 0)
    site_patient[outside] = ("MRN" + digits(chunk.rng.integers(0, 10**8, len(outside)), 8)).to_numpy()
    values = {
        "SAMPLE_ID": pl.Series(lab.sample_id),
        "SOURCE_PERSON_ID": records.ids.gather(rec),
        "SPECIMEN_TYPE": pl.Series(
            np.where(lab.indicated, tests["indicated"]["specimen"], tests["screening"]["specimen"])
        ),
        "SPECIMEN_DATE": iso_dates(lab.day),
        "TEST_NAME": pl.Series(
            np.where(lab.indicated, tests["indicated"]["name"], tests["screening"]["name"])
        ),
        "GENOME_BUILD": pl.repeat(GENOME_BUILD, n, eager=True),
        "FIRST_NAME": pl.Series(records.first[rec]),
        "LAST_NAME": pl.Series(records.last[rec]),
        "BIRTH_DATE": iso_dates(records.birth[rec]),
        "SEX": pl.Series(np.where(chunk.persons.sex[lab.person] == 1, "F", "M")),
        "ORDERING_SITE": take(
            (*ORDERING_SITES, OUTSIDE_SITE), np.where(lab.ordering_site < 0, 2, lab.ordering_site)
        ),
        "ORDERING_SITE_PATIENT_ID": pl.Series(site_patient.astype(str)),
        "VCF_FILE": pl.repeat(vcf_file, n, eager=True),
    }
    return render_csv(pl.DataFrame({k: values[k] for k in MANIFEST}), no_masks(n))


def _header(samples: list[str]) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        "##fileDate=20250101",
        "##source=rwe_assets.synthetic",
        f"##reference={GENOME_BUILD}",
        *(f"##contig=<ID={name},length={length},assembly={GENOME_BUILD}>" for name, length in CONTIGS),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes, for each ALT allele">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency among called genotypes, for each ALT allele">',
        '##INFO=<ID=GENE,Number=1,Type=String,Description="HGNC gene symbol">',
        '##INFO=<ID=HGVSC,Number=A,Type=String,Description="HGVS coding DNA notation on the MANE Select transcript">',
        '##INFO=<ID=HGVSP,Number=A,Type=String,Description="HGVS protein notation">',
        '##INFO=<ID=CSQ_TERM,Number=A,Type=String,Description="Sequence Ontology consequence term">',
        '##INFO=<ID=CLNSIG,Number=A,Type=String,Description="ClinVar clinical significance">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the REF and ALT alleles">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        "#" + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    return "\n".join(lines) + "\n"


def render_vcf(chunk: Chunk, name: str) -> VcfOutput | None:
    lab, persons, rng = chunk.lab, chunk.persons, chunk.rng
    if len(lab.person) == 0:
        return None
    samples = [str(s) for s in lab.sample_id]
    genotype = persons.genotype[lab.person]  # [samples, variants, 2]
    no_call = rng.random((len(samples), genotype.shape[1])) < NO_CALL_RATE
    depth = rng.poisson(38, (len(samples), genotype.shape[1])) + 12
    quality = rng.integers(40, 100, (len(samples), genotype.shape[1]))
    variants = sorted(chunk.catalogue.variants, key=lambda v: (CONTIG_ORDER[v.chrom], v.pos))
    body = []
    truth = []
    calls = 0
    for v in variants:
        g = genotype[:, v.index, :]
        called = ~no_call[:, v.index]
        present = [a for a in range(1, len(v.alleles) + 1) if (g[called] == a).any()]
        if not present:
            continue
        renumber = {0: 0, **{a: i + 1 for i, a in enumerate(present)}}
        alt = ",".join(v.alleles[a - 1].alt for a in present)
        an = int(called.sum()) * 2
        ac = [int((g[called] == a).sum()) for a in present]
        af = [f"{c / an:.4g}" for c in ac]
        info = ";".join(
            [
                "AC=" + ",".join(map(str, ac)),
                f"AN={an}",
                "AF=" + ",".join(af),
                f"GENE={v.gene}",
                "HGVSC=" + ",".join(v.alleles[a - 1].hgvsc for a in present),
                "HGVSP=" + ",".join(v.alleles[a - 1].hgvsp for a in present),
                "CSQ_TERM=" + ",".join(v.alleles[a - 1].consequence for a in present),
                "CLNSIG=" + ",".join(v.alleles[a - 1].clnsig for a in present),
            ]
        )
        cells = []
        for s in range(len(samples)):
            dp = int(depth[s, v.index])
            if not called[s]:
                cells.append("./.:.:.:.")
                continue
            a, b = int(g[s, 0]), int(g[s, 1])
            ra, rb = renumber.get(a, 0), renumber.get(b, 0)
            ad = [0] * (len(present) + 1)
            if ra == rb:
                ad[ra] = dp
            else:
                share = int(rng.binomial(dp, 0.5))
                ad[ra], ad[rb] = share, dp - share
            cells.append(f"{ra}/{rb}:{','.join(map(str, ad))}:{dp}:{int(quality[s, v.index])}")
            for allele in sorted({ra, rb} - {0}):
                calls += 1
                truth.append(
                    (
                        name,
                        v.chrom,
                        v.pos,
                        v.ref,
                        v.alleles[present[allele - 1] - 1].alt,
                        samples[s],
                        f"{ra}/{rb}",
                        int(persons.pid[lab.person[s]]),
                    )
                )
        qual = f"{float(rng.uniform(50, 5000)):.1f}"
        body.append(
            "\t".join([v.chrom, str(v.pos), v.rsid, v.ref, alt, qual, "PASS", info, "GT:AD:DP:GQ", *cells])
        )
    text = _header(samples) + "".join(line + "\n" for line in body)
    genotypes = pl.DataFrame(
        truth,
        schema={
            "VCF_FILE": pl.String,
            "CHROM": pl.String,
            "POS": pl.Int64,
            "REF": pl.String,
            "ALT": pl.String,
            "SAMPLE_ID": pl.String,
            "GENOTYPE": pl.String,
            "TRUE_PERSON_ID": pl.Int64,
        },
        orient="row",
    )
    return VcfOutput(name, bgzf(text.encode("ascii")), len(body), calls, genotypes)
