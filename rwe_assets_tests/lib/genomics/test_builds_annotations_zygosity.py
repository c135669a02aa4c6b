"""Issue 17, items 5-7: genome build spellings and chr1 lengths, EFF and CSQ annotations (with or without
an allele), hemizygous only outside the pseudo-autosomal regions, filter_pass NULL for FILTER `.`."""

from __future__ import annotations

from pathlib import Path

import cyvcf2
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.genomics import annotations, normalize
from rwe_assets.lib.genomics.header import normalize_build, parse_header
from rwe_assets.lib.genomics.staging import stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets_tests.lib.genomics.conftest import COLUMNS, HEADER, manifest, write_vcf

DATA = Path(__file__).parents[2] / "data" / "vcf_cyvcf2_tests"


def _header(meta: str, samples: str = "S1") -> str:
    return "##fileformat=VCFv4.2\n" + meta + COLUMNS + "\t" + samples + "\n"


def _stage(dirs, lab, vcf_text: str, rows) -> tuple[object, list[dict], list[dict]]:
    lake_dir, landing = dirs
    folder = landing / "lab" / "b1"
    write_vcf(folder, "run.vcf", vcf_text)
    (folder / "sample_manifest.csv").write_text(manifest(rows))
    ingest_batch(lake_dir, landing, lab, "b1")
    report = stage_genomics(lake_dir)
    staged = lake.read_table(lake.table_path(lake_dir, "staging", "variant")).to_pylist()
    quarantined = lake.read_table(lake.table_path(lake_dir, "staging", "variant_quarantine")).to_pylist()
    return report, staged, quarantined


# --------------------------------------------------------------------------- 5. builds


@pytest.mark.parametrize(
    ("text", "build"),
    [
        ("GRCh37", "GRCh37"),
        ("hg19", "GRCh37"),
        ("b37", "GRCh37"),
        ("file:///ref/hs37d5.fa.gz", "GRCh37"),
        ("/ref/human_g1k_v37.fasta", "GRCh37"),
        ("GRCh38.p14", "GRCh38"),
        ("hg38", "GRCh38"),
        ("/bwa-kit/hs38DH.fa", "GRCh38"),
        ("NCBI36", "NCBI36"),
        ("hg18", "NCBI36"),
        ("/gatk/human_b36_both.fasta", "NCBI36"),
        ("T2T-CHM13", "T2T-CHM13"),
        ("chm13v2.0.fa", "T2T-CHM13"),
        ("hs1", "T2T-CHM13"),
        ("/var/reference_sequences/MiSeq/genome.fa", None),
        ("/refs/chs1.fa", None),  # "hs1" inside a word is no build
        ("hg19 lifted over to hg38", None),  # two builds named: none taken
        ("", None),
    ],
)
def test_build_spellings(text, build):
    assert normalize_build(text) == build


@pytest.mark.parametrize(
    ("length", "build"),
    [
        (248956422, "GRCh38"),
        (249250621, "GRCh37"),
        (247249719, "NCBI36"),
        (248387328, "T2T-CHM13"),
        (1000, None),
    ],
)
def test_build_from_the_chr1_contig_length(length, build):
    header = parse_header(_header(f"##contig=<ID=chr1,length={length}>\n##contig=<ID=chr2,length=5>\n"))
    assert header.build == build


def test_build_from_reference_assembly_line_and_bundled_files():
    assert parse_header(_header("##reference=file:///refs/hg18/hg18.fa\n")).build == "NCBI36"
    assert parse_header(_header("##assembly=T2T-CHM13v2.0\n")).build == "T2T-CHM13"
    builds = {
        name: cyvcf2_header(DATA / name).build
        for name in ("test-genotypes.vcf", "test.snpeff.vcf", "test-hemi.vcf")
    }
    assert builds == {"test-genotypes.vcf": "GRCh37", "test.snpeff.vcf": "GRCh37", "test-hemi.vcf": None}


def test_an_ncbi36_header_against_a_grch38_manifest_is_a_build_mismatch(dirs, lab):
    gt = '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    text = _header(f"##reference=hg18\n##contig=<ID=chr1,length=247249719>\n{gt}")
    text += "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
    report, staged, quarantined = _stage(dirs, lab, text, [("S1", "P1", "GRCh38", "run.vcf")])
    assert staged == [] and [q["reason_code"] for q in quarantined] == ["BUILD_MISMATCH"]
    assert report.variants + report.variants_quarantined == 1


def cyvcf2_header(path: Path):
    return parse_header(cyvcf2.VCF(str(path)).raw_header)


# --------------------------------------------------------------------------- 6. annotations

EFF4 = (
    '##INFO=<ID=EFF,Number=.,Type=String,Description="Predicted effects for this variant.Format: '
    "'Effect ( Effect_Impact | Functional_Class | Codon_Change | Amino_Acid_Change| Amino_Acid_Length | "
    "Gene_Name | Transcript_BioType | Gene_Coding | Transcript_ID | Exon_Rank  | Genotype_Number "
    "[ | ERRORS | WARNINGS ] )' \">\n"
)
EFF3 = (
    "##INFO=<ID=EFF,Number=.,Type=String,Description=\"Format: 'Effect ( Effect_Impact | Functional_Class "
    "| Codon_Change | Amino_Acid_change| Amino_Acid_length | Gene_Name | Gene_BioType | Coding | Transcript "
    "| Exon [ | ERRORS | WARNINGS ] )' \">\n"
)
CSQ_NO_ALLELE = (
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
    'Format: Consequence|SYMBOL|Feature|HGVSc">\n'
)
CSQ_ALLELE_NUM = CSQ_NO_ALLELE.replace("Format: Consequence", "Format: ALLELE_NUM|Consequence")


def test_eff_fields_come_from_the_header():
    assert parse_header(_header(EFF4)).eff_fields[-1] == "Genotype_Number"
    assert parse_header(_header(EFF3)).eff_fields == [
        "Effect_Impact", "Functional_Class", "Codon_Change", "Amino_Acid_change", "Amino_Acid_length",
        "Gene_Name", "Gene_BioType", "Coding", "Transcript", "Exon",
    ]  # fmt: skip


def test_eff_with_genotype_number_picks_this_alts_highest_impact_entry():
    fields = parse_header(_header(EFF4)).eff_fields
    eff = (
        "INTRON(MODIFIER|||||BRCA1|protein_coding|CODING|ENST1|5|1),"
        "NON_SYNONYMOUS_CODING(MODERATE|MISSENSE|gGt/gAt|p.Gly12Asp/c.35G>A|100|BRCA1|protein_coding|CODING|ENST2|2|1),"
        "STOP_GAINED(HIGH|NONSENSE|Gga/Tga|p.Gly12*/c.34G>T|100|BRCA1|protein_coding|CODING|ENST2|2|2)"
    )
    info = {"EFF": eff}
    first = annotations.annotate(info, "G", "A", 1, None, eff_fields=fields, n_alts=2)
    second = annotations.annotate(info, "G", "T", 2, None, eff_fields=fields, n_alts=2)
    assert (first.source, first.gene_symbol, first.transcript, first.consequence) == (
        "EFF", "BRCA1", "ENST2", "NON_SYNONYMOUS_CODING"
    )  # fmt: skip
    assert (first.hgvs_c, first.hgvs_p) == ("c.35G>A", "p.Gly12Asp")
    assert (second.consequence, second.hgvs_p, second.warning) == ("STOP_GAINED", "p.Gly12*", None)


def test_eff_without_genotype_number_applies_to_a_single_alt_only():
    fields = parse_header(_header(EFF3)).eff_fields
    info = {"EFF": "DOWNSTREAM(MODIFIER||||85|FAM138A|protein_coding|CODING|ENST00000417324|)"}
    single = annotations.annotate(info, "T", "G", 1, None, eff_fields=fields, n_alts=1)
    multi = annotations.annotate(info, "T", "G", 1, None, eff_fields=fields, n_alts=2)
    assert (single.source, single.gene_symbol, single.transcript, single.hgvs_p) == (
        "EFF", "FAM138A", "ENST00000417324", None  # "G12S"-style changes are not HGVS
    )  # fmt: skip
    assert (multi.source, multi.gene_symbol, multi.warning) == (None, None, annotations.ALLELE_NOT_RESOLVED)


def test_csq_without_allele_single_alt_multi_alt_and_allele_num():
    fields = parse_header(_header(CSQ_NO_ALLELE)).vep_fields
    info = {"CSQ": "missense_variant|LDLR|ENST1|c.81C>G,intron_variant|LDLR|ENST2|"}
    single = annotations.annotate(info, "C", "G", 1, fields, n_alts=1)
    multi = annotations.annotate(info, "C", "G", 1, fields, n_alts=2)
    assert (single.source, single.gene_symbol, single.transcript, single.hgvs_c) == (
        "CSQ",
        "LDLR",
        "ENST1",
        "c.81C>G",
    )
    assert (multi.source, multi.warning) == (None, annotations.ALLELE_NOT_RESOLVED)
    numbered = parse_header(_header(CSQ_ALLELE_NUM)).vep_fields
    info = {"CSQ": "1|missense_variant|LDLR|ENST1|c.81C>G,2|stop_gained|LDLR|ENST1|c.81C>A"}
    second = annotations.annotate(info, "C", "A", 2, numbered, n_alts=2)
    assert (second.consequence, second.hgvs_c, second.warning) == ("stop_gained", "c.81C>A", None)


def _bundled_calls(name: str):
    """(annotation, alt_index) per called ALT allele per sample of a bundled file, annotated as staging does."""
    vcf = cyvcf2.VCF(str(DATA / name))
    header = parse_header(vcf.raw_header)
    out = []
    for record in vcf:
        info = dict(record.INFO)
        for k, alt in enumerate(record.ALT, start=1):
            note = annotations.annotate(
                info,
                record.REF,
                alt,
                k,
                header.vep_fields,
                eff_fields=header.eff_fields,
                n_alts=len(record.ALT),
            )
            out += [note] * sum(k in g[:-1] for g in record.genotypes)
    return out


def test_bundled_snpeff_eff_and_vep_csq_without_allele_are_annotated():
    eff = _bundled_calls("test.snpeff.vcf")
    csq = _bundled_calls("test-hemi.vcf")
    assert len(eff) == 8 and {n.source for n in eff} == {"EFF"} and all(n.gene_symbol for n in eff)
    assert eff[0].gene_symbol == "FAM138A"
    assert len(csq) == 3 and {(n.source, n.gene_symbol) for n in csq} == {("CSQ", "LDLR")}
    assert {n.consequence for n in csq} == {"synonymous_variant", "missense_variant"}


def test_annotation_formats_not_understood_are_named():
    bcsq = '##INFO=<ID=BCSQ,Number=.,Type=String,Description="bcftools csq">\n'
    bare_csq = '##INFO=<ID=CSQ,Number=.,Type=String,Description="VEP consequences">\n'
    annovar = '##INFO=<ID=Gene.refGene,Number=.,Type=String,Description="ANNOVAR">\n'
    assert annotations.unparsed_formats(parse_header(_header(bcsq + bare_csq + annovar))) == [
        "BCSQ", "Gene.refGene", "CSQ"
    ]  # fmt: skip
    assert annotations.unparsed_formats(parse_header(_header(EFF3 + CSQ_NO_ALLELE))) == []


# --------------------------------------------------------------------------- 7. hemizygous, filter_pass


@pytest.mark.parametrize(
    ("chrom", "pos", "build", "expected"),
    [
        ("chrX", 400, "GRCh38", "hemizygous"),  # before PAR1 (10,001-2,781,479)
        ("chrX", 5_000_000, "GRCh38", "hemizygous"),
        ("chrX", 100_000, "GRCh38", None),  # PAR1
        ("X", 155_800_000, "GRCh38", None),  # PAR2
        ("chrY", 56_900_000, "GRCh38", None),  # PAR2 of Y
        ("chrY", 20_000_000, "GRCh38", "hemizygous"),
        ("X", 30_000, "GRCh37", "hemizygous"),  # GRCh37 PAR1 starts at 60,001
        ("X", 30_000, "GRCh38", None),
        ("X", 30_000, None, None),  # the builds disagree, none named
        ("X", 5_000_000, None, "hemizygous"),  # outside the PARs of both
        ("chrM", 100, None, "hemizygous"),
        ("MT", 100, "GRCh37", "hemizygous"),
        ("chr1", 1_000_000, "GRCh38", None),  # one allele on an autosome
        ("chr7", 1_000_000, None, None),
    ],
)
def test_one_allele_genotype_is_hemizygous_only_on_x_y_m_outside_pars(chrom, pos, build, expected):
    assert normalize.zygosity("1", 1, chrom, pos, build) == expected


def test_diploid_zygosity_unchanged_by_where():
    assert [normalize.zygosity(gt, 1, "chr1", 100, "GRCh38") for gt in ("0/1", "1/1", "./1", "1|2")] == [
        "het", "hom_alt", "half_call", "het"
    ]  # fmt: skip


def test_filter_pass_is_null_for_a_missing_filter(dirs, lab):
    text = (
        HEADER
        + COLUMNS
        + "\tS1\n"
        + (
            "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
            "chr1\t200\t.\tA\tC\t50\t.\t.\tGT\t0/1\n"
            "chr1\t300\t.\tA\tC\t50\tLowQual\t.\tGT\t0/1\n"
        )
    )
    report, staged, _ = _stage(dirs, lab, text, [("S1", "P1", "GRCh38", "run.vcf")])
    assert sorted((v["pos"], v["filter"], v["filter_pass"]) for v in staged) == [
        (100, "PASS", True), (200, ".", None), (300, "LowQual", False)
    ]  # fmt: skip
    assert (report.variants, report.variants_quarantined) == (3, 0)


def test_staged_one_allele_calls_are_hemizygous_only_where_the_genome_is_haploid(dirs, lab):
    text = (
        HEADER
        + COLUMNS
        + "\tS1\n"
        + (
            "chr1\t1000000\t.\tA\tC\t50\tPASS\t.\tGT\t1\n"  # one allele on an autosome: unknown
            "chrX\t100000\t.\tA\tC\t50\tPASS\t.\tGT\t1\n"  # GRCh38 PAR1: diploid in males
            "chrX\t5000000\t.\tA\tC\t50\tPASS\t.\tGT\t1\n"  # outside the PARs
            "chrX\t6000000\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
        )
    )
    report, staged, _ = _stage(dirs, lab, text, [("S1", "P1", "GRCh38", "run.vcf")])
    assert sorted((v["chrom"], v["pos"], v["zygosity"]) for v in staged) == [
        ("chr1", 1_000_000, None), ("chrX", 100_000, None), ("chrX", 5_000_000, "hemizygous"),
        ("chrX", 6_000_000, "het"),
    ]  # fmt: skip
    assert (report.variants, report.variants_quarantined) == (4, 0)


@pytest.mark.parametrize(
    ("name", "source", "calls"), [("test.snpeff.vcf", "EFF", 8), ("test-hemi.vcf", "CSQ", 3)]
)
def test_staged_calls_of_the_bundled_files_carry_their_annotations(dirs, lab, name, source, calls):
    lake_dir, landing = dirs
    folder = landing / "lab" / "b1"
    folder.mkdir(parents=True)
    (folder / name).write_bytes((DATA / name).read_bytes())
    samples = cyvcf2.VCF(str(DATA / name)).samples
    (folder / "sample_manifest.csv").write_text(
        manifest([(s, f"P{i}", "GRCh37", name) for i, s in enumerate(samples)])
    )
    ingest_batch(lake_dir, landing, lab, "b1")
    stage_genomics(lake_dir)
    staged = lake.read_table(lake.table_path(lake_dir, "staging", "variant")).to_pylist()
    assert [v["annotation_source"] for v in staged] == [source] * calls


def test_unplaced_annotations_and_unread_formats_are_counted_in_the_staging_report(dirs, lab):
    bcsq = '##INFO=<ID=BCSQ,Number=.,Type=String,Description="bcftools csq">\n'
    text = (
        HEADER.replace("##FORMAT", CSQ_NO_ALLELE + bcsq + "##FORMAT")
        + COLUMNS
        + "\tS1\n"
        + "chr1\t100\t.\tA\tC,T\t50\tPASS\tCSQ=missense_variant|LDLR\tGT\t1/2\n"  # two ALTs, no Allele
    )
    report, staged, _ = _stage(dirs, lab, text, [("S1", "P1", "GRCh38", "run.vcf")])
    assert [v["annotation_source"] for v in staged] == [None, None]
    assert report.annotation_warnings == {"ALLELE_NOT_RESOLVED": 2}
    assert report.unread_annotation_formats == {"lab/b1/run.vcf": ["BCSQ"]}
