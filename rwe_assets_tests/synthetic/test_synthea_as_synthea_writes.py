"""The generator's Synthea CSV is written the way Synthea writes it: every Synthea v3 file with the
header of the bundled real export, no quote character, commas in text replaced by spaces."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from rwe_assets.lib.sources import load_registry

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "synthea27"


def _sample_headers() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8").split("\n", 1)[0] for p in sorted(SAMPLE.glob("*.csv"))}


def test_every_synthea_v3_file_has_the_header_of_the_real_export(population):
    expected = _sample_headers()
    assert len(expected) == 18
    folder = population.folder("ehr_site_a")
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    for name, header in expected.items():
        assert (folder / name).read_text(encoding="utf-8").split("\n", 1)[0] == header, name


def test_headers_hold_the_registry_required_columns_in_order(population):
    folder = population.folder("ehr_site_a")
    for entity in load_registry().get("ehr_site_a").entities:
        header = (folder / f"{entity.name}.csv").read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        required = list(entity.required_columns)
        assert [c for c in header if c in required] == required, entity.name


def test_files_the_generator_has_nothing_for_are_header_only(population):
    folder = population.folder("ehr_site_a")
    for name in ("careplans", "claims", "claims_transactions", "imaging_studies", "supplies"):
        text = (folder / f"{name}.csv").read_text(encoding="utf-8")
        assert text == _sample_headers()[f"{name}.csv"] + "\n", name


def test_no_quote_character_in_any_synthea_file(population, clean_population):
    for pop in (population, clean_population):
        for path in pop.folder("ehr_site_a").iterdir():
            assert b'"' not in path.read_bytes(), path.name


def test_rows_split_on_commas_into_the_header_width(population):
    """With no quoting, a plain split on ',' gives the fields: full width, or one short for the
    rows broken on purpose (the malformed count of the report)."""
    malformed = {
        f.path.rsplit("/", 1)[-1]: f.malformed_rows for f in population.report.files_of("ehr_site_a")
    }
    for path in population.folder("ehr_site_a").iterdir():
        lines = path.read_text(encoding="utf-8").splitlines()
        width = len(lines[0].split(","))
        short = 0
        for line in lines[1:]:
            fields = len(line.split(","))
            assert fields in (width, width - 1), (path.name, line)
            short += fields == width - 1
        assert short == malformed[path.name], path.name


def test_text_with_commas_comes_out_as_synthea_writes_it(population):
    # real Synthea writes "Influenza, seasonal, injectable, preservative free" (CVX 140) as
    sample = (SAMPLE / "immunizations.csv").read_text(encoding="utf-8")
    assert ",140,Influenza  seasonal  injectable  preservative free,140.52" in sample
    rows = list(csv.reader(io.StringIO((population.folder("ehr_site_a") / "immunizations.csv").read_text())))
    flu = {r[4] for r in rows[1:] if len(r) == 6 and r[3] == "140"}
    assert flu == {"Influenza  seasonal  injectable  preservative free"}


def test_synthea_text_replaces_commas_and_line_breaks_like_synthea():
    from rwe_assets.synthetic.formats.synthea import synthea_text

    values = pl.Series(["Hep A, ped/adol, 2 dose", "a\r\nb", "c\rd\ne", " padded, ", "", None])
    assert synthea_text(values).to_list() == [
        "Hep A  ped/adol  2 dose",
        "a b",
        "c d e",
        "padded",
        "",
        None,
    ]
