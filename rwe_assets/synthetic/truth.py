"""The ground truth beside the landing zone (OUT_DIR/truth/): who every person and source record
really is, the lab's samples, and the rows each landing file should yield (expected_counts.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from rwe_assets.lib import truth_files
from rwe_assets.synthetic.formats.common import Chunk, csv_header, csv_lines
from rwe_assets.synthetic.landing_files import Sink
from rwe_assets.synthetic.report import FileStats
from rwe_assets.synthetic.util import NEVER, iso_dates

PERSONS_COLUMNS = [
    "TRUE_PERSON_ID",
    "HOUSEHOLD_ID",
    "HOUSEHOLD_ROLE",
    "TWIN_OF",
    "SEX",
    "BIRTH_DATE",
    "DEATH_DATE",
    "FIRST_NAME",
    "MIDDLE_NAME",
    "LAST_NAME",
    "BIRTH_SURNAME",
    "SURNAME_CHANGE_DATE",
    "ADDRESS",
    "CITY",
    "STATE",
    "ZIP",
    "OLD_ADDRESS",
    "OLD_CITY",
    "OLD_STATE",
    "OLD_ZIP",
    "MOVE_DATE",
    "SSN",
    "PHONE",
    "CARRIED_VARIANT",
    "BREAST_CANCER_ONSET",
    "IN_EHR_SITE_A",
    "IN_EHR_SITE_B",
    "IN_PAYER",
    "IN_LAB",
]
RECORDS_COLUMNS = [
    "SOURCE",
    "BATCH",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "IS_DUPLICATE",
    "TYPO",
    "NICKNAME",
    "DAY_MONTH_SWAP",
    "OLD_SURNAME",
    "OLD_ADDRESS",
    "SSN_MISSING",
]
SAMPLES_COLUMNS = [
    "SAMPLE_ID",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "BATCH",
    "VCF_FILE",
    "IS_RETEST",
    "INDICATED",
]
GENOTYPE_COLUMNS = ["VCF_FILE", "CHROM", "POS", "REF", "ALT", "SAMPLE_ID", "GENOTYPE", "TRUE_PERSON_ID"]
COUNTS_COLUMNS = [
    "SOURCE",
    "BATCH",
    "FILE",
    "ENTITY",
    "ROWS",
    "MALFORMED_ROWS",
    "INVALID_DATE_ROWS",
    "UNMAPPED_CODE_ROWS",
    "NON_REF_CALLS",
]


def truth_sinks(truth: Path) -> dict[str, Sink]:
    """The truth files a chunk appends to, by the key of ChunkResult.truth."""
    return {
        "persons": Sink(truth / truth_files.PERSONS, csv_header(PERSONS_COLUMNS), False),
        "person_records": Sink(truth / truth_files.PERSON_RECORDS, csv_header(RECORDS_COLUMNS), False),
        "lab_samples": Sink(truth / truth_files.LAB_SAMPLES, csv_header(SAMPLES_COLUMNS), False),
        "genotypes": Sink(truth / truth_files.GENOTYPES, csv_header(GENOTYPE_COLUMNS), False),
    }


def _persons(chunk: Chunk) -> pl.DataFrame:
    """truth/persons.csv: one row per true person."""
    p, ms, places, cat = chunk.persons, chunk.membership, chunk.names.places, chunk.catalogue
    city = np.array([x.city for x in places] + [""])
    state = np.array([x.state for x in places] + [""])
    zips = np.array([x.zip for x in places] + [""])
    old = np.where(p.old_place >= 0, p.old_place, len(places))
    in_lab = np.zeros(len(p), dtype=bool)
    in_lab[chunk.lab.person] = True
    variant_keys = np.array([v.key for v in cat.variants] + [""])
    breast = chunk.prepared.onset[:, cat.condition("breast_cancer").index]
    return pl.DataFrame(
        {
            "TRUE_PERSON_ID": p.pid,
            "HOUSEHOLD_ID": p.household,
            "HOUSEHOLD_ROLE": np.array(["head", "partner", "child"])[p.role],
            "TWIN_OF": np.where(p.twin_of > 0, p.twin_of.astype(str), ""),
            "SEX": np.where(p.sex == 1, "F", "M"),
            "BIRTH_DATE": iso_dates(p.birth),
            "DEATH_DATE": iso_dates(p.death),
            "FIRST_NAME": p.first,
            "MIDDLE_NAME": p.middle,
            "LAST_NAME": p.last,
            "BIRTH_SURNAME": p.birth_surname,
            "SURNAME_CHANGE_DATE": iso_dates(
                np.where(p.surname_change_day >= 0, p.surname_change_day, NEVER)
            ),
            "ADDRESS": p.street,
            "CITY": city[p.place],
            "STATE": state[p.place],
            "ZIP": zips[p.place],
            "OLD_ADDRESS": p.old_street,
            "OLD_CITY": city[old],
            "OLD_STATE": state[old],
            "OLD_ZIP": zips[old],
            "MOVE_DATE": iso_dates(np.where(p.move_day >= 0, p.move_day, NEVER)),
            "SSN": p.ssn,
            "PHONE": p.phone,
            "CARRIED_VARIANT": variant_keys[np.where(p.carrier >= 0, p.carrier, len(cat.variants))],
            "BREAST_CANCER_ONSET": iso_dates(breast),
            "IN_EHR_SITE_A": ms.in_a.astype(np.int8),
            "IN_EHR_SITE_B": ms.in_b.astype(np.int8),
            "IN_PAYER": ms.in_payer.astype(np.int8),
            "IN_LAB": in_lab.astype(np.int8),
        }
    )


def _person_records(chunk: Chunk) -> pl.DataFrame:
    """truth/person_records.csv: one row per source person record, with its noise flags."""
    p = chunk.persons
    frames = []
    for source, r in chunk.records.items():
        frames.append(
            pl.DataFrame(
                {
                    "SOURCE": np.full(len(r), source),
                    "BATCH": np.full(len(r), chunk.batch),
                    "SOURCE_PERSON_ID": r.ids,
                    "TRUE_PERSON_ID": p.pid[r.person],
                    "IS_DUPLICATE": r.dup,
                    "TYPO": r.typo.astype(np.int8),
                    "NICKNAME": r.nickname.astype(np.int8),
                    "DAY_MONTH_SWAP": r.dm_swap.astype(np.int8),
                    "OLD_SURNAME": r.old_surname.astype(np.int8),
                    "OLD_ADDRESS": r.old_address.astype(np.int8),
                    "SSN_MISSING": r.ssn_missing.astype(np.int8),
                },
                schema_overrides={"SOURCE": pl.String, "BATCH": pl.String, "SOURCE_PERSON_ID": pl.String},
            )
        )
    return pl.concat(frames)


def _lab_samples(chunk: Chunk, vcf_file: str) -> pl.DataFrame:
    """truth/lab_samples.csv: one row per lab sample."""
    p, tests = chunk.persons, chunk.lab
    lab_index = chunk.records["lab"].index(len(p))
    return pl.DataFrame(
        {
            "SAMPLE_ID": tests.sample_id,
            "SOURCE_PERSON_ID": chunk.records["lab"].ids.gather(lab_index[tests.person, tests.record]),
            "TRUE_PERSON_ID": p.pid[tests.person],
            "BATCH": np.full(len(tests.person), chunk.batch),
            "VCF_FILE": np.full(len(tests.person), vcf_file),
            "IS_RETEST": tests.record,
            "INDICATED": tests.indicated.astype(np.int8),
        },
        schema_overrides={
            "SAMPLE_ID": pl.String,
            "SOURCE_PERSON_ID": pl.String,
            "BATCH": pl.String,
            "VCF_FILE": pl.String,
        },
    )


def truth_tables(chunk: Chunk, vcf_file: str) -> dict[str, bytes]:
    """A chunk's rows of the truth files (no header), by the key of truth_sinks()."""
    return {
        "persons": csv_lines(_persons(chunk)),
        "person_records": csv_lines(_person_records(chunk)),
        "lab_samples": csv_lines(_lab_samples(chunk, vcf_file)),
    }


def write_counts(path: Path, files: list[FileStats]) -> None:
    frame = pl.DataFrame(
        {
            "SOURCE": [f.source for f in files],
            "BATCH": [f.batch for f in files],
            "FILE": [f.path for f in files],
            "ENTITY": [f.entity for f in files],
            "ROWS": [f.rows for f in files],
            "MALFORMED_ROWS": [f.malformed_rows for f in files],
            "INVALID_DATE_ROWS": [f.invalid_date_rows for f in files],
            "UNMAPPED_CODE_ROWS": [f.unmapped_code_rows for f in files],
            "NON_REF_CALLS": [f.non_ref_calls for f in files],
        },
        schema={
            c: (pl.String if c in ("SOURCE", "BATCH", "FILE", "ENTITY") else pl.Int64) for c in COUNTS_COLUMNS
        },
    )
    path.write_bytes(csv_header(COUNTS_COLUMNS) + csv_lines(frame))
