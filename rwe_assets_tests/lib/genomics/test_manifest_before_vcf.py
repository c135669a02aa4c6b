"""A lab batch may hold the sample manifest alone (the VCFs follow in a later batch, or a small site
sequenced no one yet): staging stages its specimens and no calls instead of failing, and a later batch
with the VCF stages its calls."""

from __future__ import annotations

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import reconcile, stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets_tests.lib.genomics.conftest import COLUMNS, HEADER, land_lab

MANIFEST = (
    "SAMPLE_ID,SOURCE_PERSON_ID,SPECIMEN_TYPE,SPECIMEN_DATE,TEST_NAME,GENOME_BUILD,VCF_FILE\n"
    "NA00001,P1,Blood,2024-05-01,Panel,GRCh38,run.vcf\n"
)
LATER = MANIFEST.replace("NA00001,P1", "NA00002,P2")
VCF = HEADER + COLUMNS + "\tNA00002\n" + "chr1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"


def _rows(lake_dir, name: str) -> int:
    table = lake.read_table(lake.table_path(lake_dir, "staging", name))
    return 0 if table is None else table.num_rows


def test_a_batch_with_only_the_sample_manifest_stages_without_calls(dirs, lab):
    lake_dir, landing = dirs
    land_lab(landing, "b1", {"sample_manifest.csv": MANIFEST})
    ingest_batch(lake_dir, landing, lab, "b1")
    report = stage_genomics(lake_dir)
    assert report.variants == 0
    assert _rows(lake_dir, "variant") == 0
    assert all(raw == staged + quarantined for _, raw, staged, quarantined in reconcile(lake_dir))

    land_lab(landing, "b2", {"run.vcf": VCF, "sample_manifest.csv": LATER})
    ingest_batch(lake_dir, landing, lab, "b2")
    assert stage_genomics(lake_dir).variants == 1
