"""Sample identity is (batch, VCF_FILE, sample name) -> specimen -> person, and the reference build is
the header's, else the manifest's: hand-written VCFs whose sample names repeat across files and
batches, as real lab VCFs do (NA00001, TUMOR/NORMAL)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.genomics.cdm import build_genomics_cdm
from rwe_assets.lib.genomics.staging import reconcile, stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets_tests.lib.genomics.conftest import COLUMNS, HEADER, land_lab, manifest

QUERY = resources.files("rwe_assets.lib") / "sql" / "genomics" / "brca1_carriers_with_breast_cancer.sql"
# HEADER declares GRCh38 (##reference=); 12 meta lines + #CHROM, so record n is on line 13 + n.
FILE_A = (
    HEADER
    + COLUMNS
    + "\tNA00001\tNA00002\n"
    + "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\t0/0\n"
    + "chr1\t200\t.\tG\tT\t50\tPASS\t.\tGT\t0/0\t1/1\n"
)
FILE_B = HEADER + COLUMNS + "\tNA00001\tNA00002\n" + "chr1\t300\t.\tC\tG\t50\tPASS\t.\tGT\t0/1\t0/1\n"
# No build anywhere in the header: no ##reference, a contig without length or assembly.
NO_BUILD = (
    "##fileformat=VCFv4.2\n##contig=<ID=chr17>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    + COLUMNS
    + "\tS1\n"
    + "chr17\t43057062\trs80357906\tT\tTG\t60\tPASS\t.\tGT\t0/1\n"
)


def _ingest(dirs, lab, batch: str, files: dict[str, str]):
    lake_dir, landing = dirs
    land_lab(landing, batch, files)
    ingest_batch(lake_dir, landing, lab, batch)
    report = stage_genomics(lake_dir)
    assert all(raw == staged + quarantined for _, raw, staged, quarantined in reconcile(lake_dir))
    return report


def _table(lake_dir: Path, name: str) -> list[dict]:
    return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()


def _staged_persons(lake_dir: Path) -> list[tuple[str, int, str, str]]:
    """(VCF, position, sample, person) per staged call."""
    return sorted(
        (v["_source_file"], v["pos"], v["sample_id"], v["source_person_id"])
        for v in _table(lake_dir, "variant")
    )


def _cdm(lake_dir: Path, con=None):
    """The G-CDM on a person map that sends lab person Pn to person_id n."""
    if con is None:
        con = duckdb.connect()
        for statement in cdm_ddl():
            con.execute(statement)
    persons = {v["source_person_id"] for v in _table(lake_dir, "specimen")}
    con.execute(
        "CREATE OR REPLACE TABLE person_map (source_system VARCHAR, source_person_id VARCHAR, person_id BIGINT)"
    )
    con.executemany("INSERT INTO person_map VALUES ('lab', ?, ?)", [(p, int(p[1:])) for p in sorted(persons)])
    report = build_genomics_cdm(con, lake_dir, "person_map")
    return con, report


def _cdm_persons(con) -> list[tuple[int, int]]:
    """(position, person_id) per variant_occurrence, after checking its specimen and procedure agree."""
    disagree = con.execute(
        """
        SELECT count(*) FROM cdm.variant_occurrence vo
        JOIN cdm.specimen s USING (specimen_id)
        JOIN cdm.procedure_occurrence po USING (procedure_occurrence_id)
        WHERE s.person_id <> vo.person_id OR po.person_id <> vo.person_id
        """
    ).fetchone()[0]
    assert disagree == 0
    return sorted(con.execute("SELECT position, person_id FROM cdm.variant_occurrence").fetchall())


# --------------------------------------------------------------------------- item 1: sample identity


def test_two_files_of_one_batch_share_sample_names_for_different_persons(dirs, lab):
    rows = [
        ("NA00001", "P1", "GRCh38", "a.vcf"),
        ("NA00002", "P2", "GRCh38", "a.vcf"),
        ("NA00001", "P3", "GRCh38", "b.vcf"),
        ("NA00002", "P4", "GRCh38", "b.vcf"),
    ]
    report = _ingest(
        dirs, lab, "b1", {"a.vcf": FILE_A, "b.vcf": FILE_B, "sample_manifest.csv": manifest(rows)}
    )
    assert (report.variants, report.variants_quarantined, report.specimens) == (4, 0, 4)
    assert _staged_persons(dirs[0]) == [
        ("lab/b1/a.vcf", 100, "NA00001", "P1"),
        ("lab/b1/a.vcf", 200, "NA00002", "P2"),
        ("lab/b1/b.vcf", 300, "NA00001", "P3"),
        ("lab/b1/b.vcf", 300, "NA00002", "P4"),
    ]
    con, cdm = _cdm(dirs[0])
    assert (cdm.specimens, cdm.procedures, cdm.variant_occurrences) == (4, 4, 4)
    assert _cdm_persons(con) == [(100, 1), (200, 2), (300, 3), (300, 4)]


def test_a_later_batch_reusing_file_and_sample_names_leaves_earlier_calls_with_their_persons(dirs, lab):
    first = manifest([("NA00001", "P1", "GRCh38", "run.vcf"), ("NA00002", "P2", "GRCh38", "run.vcf")])
    _ingest(dirs, lab, "b1", {"run.vcf": FILE_A, "sample_manifest.csv": first})
    con, _ = _cdm(dirs[0])
    before = con.execute(
        "SELECT position, person_id, specimen_id FROM cdm.variant_occurrence ORDER BY 1"
    ).fetchall()
    # a new file of the same name, with the same sample names, for two other persons
    second = manifest([("NA00001", "P3", "GRCh38", "run.vcf"), ("NA00002", "P4", "GRCh38", "run.vcf")])
    report = _ingest(dirs, lab, "b2", {"run.vcf": FILE_B, "sample_manifest.csv": second})
    assert (report.variants, report.variants_quarantined, report.specimens) == (4, 0, 4)
    assert _staged_persons(dirs[0]) == [
        ("lab/b1/run.vcf", 100, "NA00001", "P1"),
        ("lab/b1/run.vcf", 200, "NA00002", "P2"),
        ("lab/b2/run.vcf", 300, "NA00001", "P3"),
        ("lab/b2/run.vcf", 300, "NA00002", "P4"),
    ]
    con, cdm = _cdm(dirs[0], con)
    assert cdm.specimens == 4 and _cdm_persons(con) == [(100, 1), (200, 2), (300, 3), (300, 4)]
    after = con.execute(
        "SELECT position, person_id, specimen_id FROM cdm.variant_occurrence WHERE position < 300 ORDER BY 1"
    ).fetchall()
    assert after == before  # same persons, same specimen ids


def test_a_sample_of_one_file_given_two_persons_is_quarantined_naming_the_file(dirs, lab):
    rows = [
        ("NA00001", "P1", "GRCh38", "a.vcf"),
        ("NA00002", "P2", "GRCh38", "a.vcf"),
        ("NA00001", "P5", "GRCh38", "a.vcf"),
        ("NA00001", "P3", "GRCh38", "b.vcf"),
    ]
    report = _ingest(
        dirs, lab, "b1", {"a.vcf": FILE_A, "b.vcf": FILE_B, "sample_manifest.csv": manifest(rows)}
    )
    specimens = _table(dirs[0], "specimen_quarantine")
    assert sorted((s["reason_code"], s["field"], s["sample_id"], s["_line_number"]) for s in specimens) == [
        ("SAMPLE_PERSON_CONFLICT", "SOURCE_PERSON_ID", "NA00001", 2),
        ("SAMPLE_PERSON_CONFLICT", "SOURCE_PERSON_ID", "NA00001", 4),
    ]
    assert all("lab/b1/a.vcf" in s["detail"] and s["vcf_source_file"] == "lab/b1/a.vcf" for s in specimens)
    calls = _table(dirs[0], "variant_quarantine")
    assert sorted((q["reason_code"], q["field"], q["sample_id"], q["_source_file"]) for q in calls) == [
        ("SAMPLE_NOT_IN_MANIFEST", "sample_id", "NA00002", "lab/b1/b.vcf"),
        ("SAMPLE_PERSON_CONFLICT", "sample_id", "NA00001", "lab/b1/a.vcf"),
    ]
    # the other sample of the file and the same name in the other file are unaffected
    assert _staged_persons(dirs[0]) == [
        ("lab/b1/a.vcf", 200, "NA00002", "P2"),
        ("lab/b1/b.vcf", 300, "NA00001", "P3"),
    ]
    assert (report.variants_quarantined, report.specimens_quarantined) == (2, 2)
    assert report.quarantine_reasons == {"SAMPLE_NOT_IN_MANIFEST": 1, "SAMPLE_PERSON_CONFLICT": 3}


def test_a_corrected_manifest_row_in_a_later_batch_repoints_that_files_sample(dirs, lab):
    first = manifest(
        [
            ("NA00001", "P1", "GRCh38", "a.vcf"),
            ("NA00002", "P2", "GRCh38", "a.vcf"),
            ("NA00001", "P3", "GRCh38", "b.vcf"),
            ("NA00002", "P4", "GRCh38", "b.vcf"),
        ]
    )
    _ingest(dirs, lab, "b1", {"a.vcf": FILE_A, "b.vcf": FILE_B, "sample_manifest.csv": first})
    con, _ = _cdm(dirs[0])
    (specimen_before,) = con.execute(
        "SELECT specimen_id FROM cdm.variant_occurrence WHERE position = 100"
    ).fetchone()
    # b2 holds only a manifest: NA00001 of b1's a.vcf is person P9, not P1 (b.vcf's NA00001 stays P3)
    report = _ingest(
        dirs, lab, "b2", {"sample_manifest.csv": manifest([("NA00001", "P9", "GRCh38", "a.vcf")])}
    )
    assert (report.variants, report.specimens, report.specimens_quarantined) == (4, 4, 1)
    assert [
        (s["reason_code"], s["_source_file"], s["_line_number"])
        for s in _table(dirs[0], "specimen_quarantine")
    ] == [("DUPLICATE_SAMPLE_ID", "lab/b1/sample_manifest.csv", 2)]
    assert _staged_persons(dirs[0]) == [
        ("lab/b1/a.vcf", 100, "NA00001", "P9"),
        ("lab/b1/a.vcf", 200, "NA00002", "P2"),
        ("lab/b1/b.vcf", 300, "NA00001", "P3"),
        ("lab/b1/b.vcf", 300, "NA00002", "P4"),
    ]
    con, _ = _cdm(dirs[0], con)
    assert _cdm_persons(con) == [(100, 9), (200, 2), (300, 3), (300, 4)]
    (specimen_after,) = con.execute(
        "SELECT specimen_id FROM cdm.variant_occurrence WHERE position = 100"
    ).fetchone()
    assert specimen_after == specimen_before  # the same specimen, re-pointed


def test_a_manifest_without_vcf_file_scopes_samples_to_its_batch(dirs, lab):
    text = "SAMPLE_ID,SOURCE_PERSON_ID,SPECIMEN_TYPE,SPECIMEN_DATE,TEST_NAME,GENOME_BUILD\n"
    first = text + "NA00001,P1,Blood,2024-05-01,Panel,GRCh38\nNA00002,P2,Blood,2024-05-01,Panel,GRCh38\n"
    _ingest(dirs, lab, "b1", {"run.vcf": FILE_A, "sample_manifest.csv": first})
    second = text + "NA00001,P3,Blood,2024-05-01,Panel,GRCh38\nNA00002,P4,Blood,2024-05-01,Panel,GRCh38\n"
    report = _ingest(dirs, lab, "b2", {"run.vcf": FILE_B, "sample_manifest.csv": second})
    assert (report.variants, report.specimens, report.specimens_quarantined) == (4, 4, 0)
    assert [p for *_, p in _staged_persons(dirs[0])] == ["P1", "P2", "P3", "P4"]


# --------------------------------------------------------------------------- item 2: reference build


@pytest.mark.parametrize("manifest_build", ["GRCh38", "hg38"])
def test_brca1_query_finds_a_carrier_whose_header_names_no_build(dirs, lab, manifest_build):
    rows = [("S1", "P7", manifest_build, "brca.vcf")]
    report = _ingest(dirs, lab, "b1", {"brca.vcf": NO_BUILD, "sample_manifest.csv": manifest(rows)})
    assert (report.variants, report.variants_quarantined) == (1, 0)
    con, _ = _cdm(dirs[0])
    assert con.execute("SELECT reference_genome FROM cdm.variant_occurrence").fetchall() == [("GRCh38",)]
    assert con.execute("SELECT reference_genome FROM cdm.genomic_test").fetchall() == [("GRCh38",)]
    con.execute(
        "INSERT INTO cdm.concept (concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, "
        "standard_concept, concept_code, valid_start_date, valid_end_date) VALUES (4112853, "
        "'Malignant tumor of breast', 'Condition', 'SNOMED', 'Clinical Finding', 'S', '254837009', "
        "DATE '1970-01-01', DATE '2099-12-31')"
    )
    con.execute(
        "INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_type_concept_id) VALUES (1, 7, 4112853, DATE '2020-01-01', 32817)"
    )
    assert con.execute(QUERY.read_text()).fetchall() == [(7,)]


def test_header_and_manifest_build_spellings_compare_normalized(dirs, lab):
    rows = [("NA00001", "P1", "hg38", "a.vcf"), ("NA00002", "P2", "hg19", "a.vcf")]
    report = _ingest(dirs, lab, "b1", {"a.vcf": FILE_A, "sample_manifest.csv": manifest(rows)})
    # the header says GRCh38: hg38 agrees, hg19 (GRCh37) does not
    assert [(q["reason_code"], q["sample_id"]) for q in _table(dirs[0], "variant_quarantine")] == [
        ("BUILD_MISMATCH", "NA00002")
    ]
    assert report.variants == 1
    assert [(v["sample_id"], v["genome_build"]) for v in _table(dirs[0], "variant")] == [
        ("NA00001", "GRCh38")
    ]
