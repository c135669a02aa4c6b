"""A generated population's lab batch through raw, staging and the CDM; the analyst's BRCA1 query
answered against the generator's ground truth."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.genomics.cdm import build_genomics_cdm, gcdm_spec
from rwe_assets.lib.genomics.staging import reconcile, stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.vocabulary import load_vocabulary
from rwe_assets.synthetic import NoiseConfig, generate

REPO = Path(__file__).resolve().parents[3]
QUERY = resources.files("rwe_assets.lib") / "sql" / "genomics" / "brca1_carriers_with_breast_cancer.sql"
# many carriers and tested persons among few persons, so the query has answers to check
RICH = NoiseConfig(pathogenic_variant_rate=0.3, lab_test_rate=0.3)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from rwe_assets.lib.sources import load_registry

    out = tmp_path_factory.mktemp("population")
    report = generate(out / "gen", 90, seed=3, config=RICH, chunk_size=45)
    lake_dir = out / "lake"
    ingest = ingest_batch(lake_dir, out / "gen" / "landing", load_registry().get("lab"), report.batches[0])
    staging = stage_genomics(lake_dir)
    con = duckdb.connect()
    for statement in cdm_ddl():
        con.execute(statement)
    load_vocabulary(con, REPO / "vocab")
    records = _csv(out / "gen" / "truth" / "person_records.csv")
    con.execute("CREATE TABLE person_map (source_system VARCHAR, source_person_id VARCHAR, person_id BIGINT)")
    con.executemany(
        "INSERT INTO person_map VALUES (?, ?, ?)",
        [(r["SOURCE"], r["SOURCE_PERSON_ID"], int(r["TRUE_PERSON_ID"])) for r in records],
    )
    cdm = build_genomics_cdm(con, lake_dir, "person_map")
    yield out / "gen", lake_dir, ingest, staging, cdm, con
    con.close()


def test_counts_reconcile_from_vcf_to_cdm(built):
    gen, lake_dir, ingest, staging, cdm, _con = built
    expected = {
        Path(r["FILE"]).name: int(r["NON_REF_CALLS"])
        for r in _csv(gen / "truth" / "expected_counts.csv")
        if r["ENTITY"] == "vcf"
    }
    assert {
        Path(f.relative_path).name: f.records_read
        for f in ingest.files
        if f.rows_stored.get("variant_call") is not None
    } == expected
    assert all(raw == staged + quarantined for _, raw, staged, quarantined in reconcile(lake_dir))
    assert staging.variants_quarantined == 0 and staging.variants == sum(expected.values())
    assert cdm.variant_occurrences == staging.variants and cdm.unlinked_specimens == 0
    samples = _csv(gen / "truth" / "lab_samples.csv")
    assert cdm.specimens == cdm.procedures == len(samples)


def test_gcdm_tables_follow_the_spec_and_join_to_the_person(built):
    _, _, _, _, _, con = built
    for table in ("genomic_test", "target_gene", "variant_occurrence", "variant_annotation"):
        columns = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'cdm' AND table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert [c[0] for c in columns] == [f.name for f in gcdm_spec().table(table).fields]
    orphans = con.execute(
        """
        SELECT count(*) FROM cdm.variant_occurrence vo
        LEFT JOIN cdm.procedure_occurrence po USING (procedure_occurrence_id)
        LEFT JOIN cdm.specimen s ON s.specimen_id = vo.specimen_id
        WHERE po.person_id IS DISTINCT FROM vo.person_id OR s.person_id IS DISTINCT FROM vo.person_id
        """
    ).fetchone()[0]
    assert orphans == 0


def test_brca1_query_matches_the_ground_truth(built):
    gen, _, _, _, _, con = built
    persons = _csv(gen / "truth" / "persons.csv")
    genotypes = _csv(gen / "truth" / "genotypes.csv")
    carriers = {
        int(g["TRUE_PERSON_ID"])
        for g in genotypes
        if (g["POS"], g["REF"], g["ALT"]) == ("43057062", "T", "TG")
    }
    cancer = {int(p["TRUE_PERSON_ID"]) for p in persons if p["BREAST_CANCER_ONSET"]}
    expected = sorted(carriers & cancer)
    assert expected, "the population must hold carriers with breast cancer"
    # the condition side: a minimal condition_occurrence (the EHR/claims build is not run here),
    # with the breast cancer concept looked up by its SNOMED code
    con.execute("DELETE FROM cdm.condition_occurrence")
    con.execute(
        """
        INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,
            condition_start_date, condition_type_concept_id)
        SELECT row_number() OVER (), p, (SELECT concept_id FROM cdm.concept WHERE vocabulary_id = 'SNOMED'
            AND concept_code = '254837009'), DATE '2020-01-01', 32817 FROM unnest(?::BIGINT[]) t(p)
        """,
        [sorted(cancer)],
    )
    answer = [row[0] for row in con.execute(QUERY.read_text()).fetchall()]
    assert answer == expected
    assert cancer - carriers, "breast cancer without the variant must be left out"


def test_documented_query_is_the_tested_one():
    doc = (REPO / "docs" / "genomics.md").read_text()
    assert QUERY.read_text().strip() in doc


def test_rebuild_keeps_ids(built):
    _, lake_dir, _, _, _, con = built
    before = con.execute(
        "SELECT variant_source_value, variant_occurrence_id FROM cdm.variant_occurrence ORDER BY 1"
    ).fetchall()
    build_genomics_cdm(con, lake_dir, "person_map")
    after = con.execute(
        "SELECT variant_source_value, variant_occurrence_id FROM cdm.variant_occurrence ORDER BY 1"
    ).fetchall()
    assert before == after and len(after) > 0
