"""The synthetic population: determinism, formats, ground truth, raw-ingest acceptance, coherence."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path

import cyvcf2
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.raw_ingest import Status, ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.synthetic import NoiseConfig, generate
from rwe_assets.synthetic.cli import main

# First lines of the Synthea v3 CSV sample (OHDSI dbt-synthea seeds, 27 patients)
SYNTHEA_HEADERS = {
    "patients.csv": "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE",
    "encounters.csv": "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION",
    "conditions.csv": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION",
    "medications.csv": "START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,PAYER_COVERAGE,DISPENSES,TOTALCOST,REASONCODE,REASONDESCRIPTION",
    "procedures.csv": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION",
    "observations.csv": "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE",
    "immunizations.csv": "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST",
    "allergies.csv": "START,STOP,PATIENT,ENCOUNTER,CODE,SYSTEM,DESCRIPTION,TYPE,CATEGORY,REACTION1,DESCRIPTION1,SEVERITY1,REACTION2,DESCRIPTION2,SEVERITY2",
    "devices.csv": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,UDI",
    "organizations.csv": "Id,NAME,ADDRESS,CITY,STATE,ZIP,LAT,LON,PHONE,REVENUE,UTILIZATION",
    "providers.csv": "Id,ORGANIZATION,NAME,GENDER,SPECIALITY,ADDRESS,CITY,STATE,ZIP,LAT,LON,UTILIZATION",
    "payers.csv": "Id,NAME,ADDRESS,CITY,STATE_HEADQUARTERED,ZIP,PHONE,AMOUNT_COVERED,AMOUNT_UNCOVERED,REVENUE,COVERED_ENCOUNTERS,UNCOVERED_ENCOUNTERS,COVERED_MEDICATIONS,UNCOVERED_MEDICATIONS,COVERED_PROCEDURES,UNCOVERED_PROCEDURES,COVERED_IMMUNIZATIONS,UNCOVERED_IMMUNIZATIONS,UNIQUE_CUSTOMERS,QOLS_AVG,MEMBER_MONTHS",
    "payer_transitions.csv": "PATIENT,MEMBERID,START_YEAR,END_YEAR,PAYER,SECONDARY_PAYER,OWNERSHIP,OWNERNAME",
}


def _numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(1, count + 1)]


# Columns of the CMS DE-SynPUF files (DE1_0 sample files)
SYNPUF_COLUMNS = {
    "Beneficiary_Summary_File": [
        "DESYNPUF_ID", "BENE_BIRTH_DT", "BENE_DEATH_DT", "BENE_SEX_IDENT_CD", "BENE_RACE_CD", "BENE_ESRD_IND",
        "SP_STATE_CODE", "BENE_COUNTY_CD", "BENE_HI_CVRAGE_TOT_MONS", "BENE_SMI_CVRAGE_TOT_MONS",
        "BENE_HMO_CVRAGE_TOT_MONS", "PLAN_CVRG_MOS_NUM", "SP_ALZHDMTA", "SP_CHF", "SP_CHRNKIDN", "SP_CNCR", "SP_COPD",
        "SP_DEPRESSN", "SP_DIABETES", "SP_ISCHMCHT", "SP_OSTEOPRS", "SP_RA_OA", "SP_STRKETIA", "MEDREIMB_IP",
        "BENRES_IP", "PPPYMT_IP", "MEDREIMB_OP", "BENRES_OP", "PPPYMT_OP", "MEDREIMB_CAR", "BENRES_CAR", "PPPYMT_CAR",
    ],
    "Carrier_Claims": [
        "DESYNPUF_ID", "CLM_ID", "CLM_FROM_DT", "CLM_THRU_DT", *_numbered("ICD9_DGNS_CD", 8),
        *_numbered("PRF_PHYSN_NPI", 13), *_numbered("TAX_NUM", 13), *_numbered("HCPCS_CD", 13),
        *_numbered("LINE_NCH_PMT_AMT", 13), *_numbered("LINE_BENE_PTB_DDCTBL_AMT", 13),
        *_numbered("LINE_BENE_PRMRY_PYR_PD_AMT", 13), *_numbered("LINE_COINSRNC_AMT", 13),
        *_numbered("LINE_ALOWD_CHRG_AMT", 13), *_numbered("LINE_PRCSG_IND_CD", 13), *_numbered("LINE_ICD9_DGNS_CD", 13),
    ],
    "Inpatient_Claims": [
        "DESYNPUF_ID", "CLM_ID", "SEGMENT", "CLM_FROM_DT", "CLM_THRU_DT", "PRVDR_NUM", "CLM_PMT_AMT",
        "NCH_PRMRY_PYR_CLM_PD_AMT", "AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI", "CLM_ADMSN_DT",
        "ADMTNG_ICD9_DGNS_CD", "CLM_PASS_THRU_PER_DIEM_AMT", "NCH_BENE_IP_DDCTBL_AMT", "NCH_BENE_PTA_COINSRNC_LBLTY_AM",
        "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM", "CLM_UTLZTN_DAY_CNT", "NCH_BENE_DSCHRG_DT", "CLM_DRG_CD",
        *_numbered("ICD9_DGNS_CD", 10), *_numbered("ICD9_PRCDR_CD", 6), *_numbered("HCPCS_CD", 45),
    ],
    "Outpatient_Claims": [
        "DESYNPUF_ID", "CLM_ID", "SEGMENT", "CLM_FROM_DT", "CLM_THRU_DT", "PRVDR_NUM", "CLM_PMT_AMT",
        "NCH_PRMRY_PYR_CLM_PD_AMT", "AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI", "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM",
        *_numbered("ICD9_DGNS_CD", 10), *_numbered("ICD9_PRCDR_CD", 6), "NCH_BENE_PTB_DDCTBL_AMT",
        "NCH_BENE_PTB_COINSRNC_AMT", "ADMTNG_ICD9_DGNS_CD", *_numbered("HCPCS_CD", 45),
    ],
    "Prescription_Drug_Events": [
        "DESYNPUF_ID", "PDE_ID", "SRVC_DT", "PROD_SRVC_ID", "QTY_DSPNSD_NUM", "DAYS_SUPLY_NUM", "PTNT_PAY_AMT",
        "TOT_RX_CST_AMT",
    ],
}  # fmt: skip
FHIR_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Procedure",
    "Observation",
    "Immunization",
    "AllergyIntolerance",
)
REPO = Path(__file__).resolve().parents[2]


def read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def ndjson(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    options = {"chunk_size": 10, "compress": True, "batches": 2}
    generate(tmp_path / "a", 25, 3, **options)
    generate(tmp_path / "b", 25, 3, **options)
    generate(tmp_path / "c", 25, 4, **options)
    a, b, c = digests(tmp_path / "a"), digests(tmp_path / "b"), digests(tmp_path / "c")
    assert len(a) > 40
    assert a == b
    different = [name for name in a if a[name] != c.get(name)]
    assert len(different) > len(a) // 2


def test_gzip_members_carry_no_timestamp(tmp_path):
    generate(tmp_path, 5, 1, compress=True)
    path = tmp_path / "landing" / "ehr_site_a" / "batch_0001" / "patients.csv.gz"
    data = path.read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # MTIME
    assert gzip.decompress(data).decode().startswith("Id,BIRTHDATE")


# ---------------------------------------------------------------------------------- formats


def test_synthea_csv_headers_equal_the_sample(population):
    folder = population.folder("ehr_site_a")
    written = {p.name for p in folder.iterdir()}
    # the files with rows; every Synthea v3 file: test_synthea_as_synthea_writes
    assert set(SYNTHEA_HEADERS) <= written
    for name, expected in SYNTHEA_HEADERS.items():
        assert (folder / name).read_text().split("\n", 1)[0] == expected, name


def test_synpuf_files_have_the_de_synpuf_columns(population):
    folder = population.folder("payer")
    years = range(2016, 2025)
    for year in years:
        columns = header(folder / f"DE1_0_{year}_Beneficiary_Summary_File_Sample_1.csv")
        assert columns[:32] == SYNPUF_COLUMNS["Beneficiary_Summary_File"]
        assert columns[32:] == [
            *[f"MDCR_ENTLMT_BUYIN_IND_{m:02d}" for m in range(1, 13)],
            *[f"HMO_IND_{m:02d}" for m in range(1, 13)],
            *[f"PTD_CNTRCT_ID_{m:02d}" for m in range(1, 13)],
        ]
    for kind in ("Carrier_Claims", "Inpatient_Claims", "Outpatient_Claims", "Prescription_Drug_Events"):
        assert header(folder / f"DE1_0_2016_to_2024_{kind}_Sample_1.csv") == SYNPUF_COLUMNS[kind], kind
    assert header(folder / "members.csv") == [
        "DESYNPUF_ID", "FIRST_NAME", "MIDDLE_NAME", "LAST_NAME", "BIRTH_DATE", "SEX", "SSN", "ADDRESS", "CITY", "STATE", "ZIP", "PHONE",
    ]  # fmt: skip
    # dates are YYYYMMDD, diagnosis codes dotless ICD-10-CM
    claims = read_csv(folder / "DE1_0_2016_to_2024_Carrier_Claims_Sample_1.csv")
    good = [c for c in claims if len(c) == len(SYNPUF_COLUMNS["Carrier_Claims"]) and c["CLM_THRU_DT"]]
    assert good and all(len(c["CLM_THRU_DT"]) == 8 and c["CLM_THRU_DT"].isdigit() for c in good)
    assert all("." not in c["ICD9_DGNS_CD_2"] for c in good)


@pytest.mark.parametrize("resource_type", FHIR_TYPES)
def test_fhir_resources_validate_as_r4(clean_population, resource_type):
    import importlib

    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    model = getattr(module, resource_type)
    lines = ndjson(clean_population.folder("ehr_site_b") / f"{resource_type}.000.ndjson")
    assert lines
    for line in lines[:: max(1, len(lines) // 60)]:
        resource = json.loads(line)
        model.model_validate(resource)
        assert resource["resourceType"] == resource_type
        subject = resource.get("subject") or resource.get("patient")
        if subject is not None:
            assert subject["reference"].startswith("Patient/")
        if "encounter" in resource:
            assert resource["encounter"]["reference"].startswith("Encounter/")


def test_fhir_references_resolve(clean_population):
    folder = clean_population.folder("ehr_site_b")
    patients = {json.loads(line)["id"] for line in ndjson(folder / "Patient.000.ndjson")}
    encounters = {json.loads(line)["id"] for line in ndjson(folder / "Encounter.000.ndjson")}
    for resource_type in FHIR_TYPES[1:]:
        for line in ndjson(folder / f"{resource_type}.000.ndjson"):
            resource = json.loads(line)
            subject = resource.get("subject") or resource["patient"]
            assert subject["reference"].removeprefix("Patient/") in patients
            if "encounter" in resource:
                assert resource["encounter"]["reference"].removeprefix("Encounter/") in encounters


def test_vcf_reads_with_cyvcf2_and_matches_manifest_and_truth(population):
    folder = population.folder("lab")
    manifest = read_csv(folder / "sample_manifest.csv")
    truth = read_csv(population.truth / "genotypes.csv")
    vcfs = sorted(folder.glob("*.vcf.gz"))
    assert len(vcfs) == len({row["VCF_FILE"] for row in manifest}) >= 2
    calls = set()
    for path in vcfs:
        vcf = cyvcf2.VCF(str(path))
        expected_samples = [row["SAMPLE_ID"] for row in manifest if row["VCF_FILE"] == path.name]
        assert vcf.samples == expected_samples
        for variant in vcf:
            assert variant.INFO.get("GENE")
            assert len(str(variant.INFO.get("HGVSC")).split(",")) == len(variant.ALT)
            for s, genotype in enumerate(variant.genotypes):
                for allele in sorted(set(genotype[:-1]) - {0, -1}):  # the last item is the phase flag
                    calls.add(
                        (path.name, variant.CHROM, variant.POS, variant.ALT[allele - 1], vcf.samples[s])
                    )
        vcf.close()
    assert calls == {(r["VCF_FILE"], r["CHROM"], int(r["POS"]), r["ALT"], r["SAMPLE_ID"]) for r in truth}
    assert population.report.tabix_indexed
    # the tabix index answers a region query: BRCA1 c.5266dupC is chr17:43057062 T>TG (GRCh38)
    brca = [r for r in truth if r["POS"] == "43057062"]
    assert brca, "the noisy population has BRCA1 c.5266dupC carriers"
    vcf = cyvcf2.VCF(str(folder / brca[0]["VCF_FILE"]))
    records = list(vcf("chr17:43057000-43057100"))
    assert [(v.POS, v.REF, v.ALT, v.INFO.get("HGVSC")) for v in records] == [
        (43057062, "T", ["TG"], "NM_007294.4:c.5266dupC")
    ]
    assert records[0].INFO.get("CLNSIG") == "Pathogenic"


# ---------------------------------------------------------------------------------- ground truth


def _landing_person_ids(population) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {"ehr_site_a": set(), "ehr_site_b": set(), "payer": set(), "lab": set()}
    a = population.folder("ehr_site_a")
    ids["ehr_site_a"] |= {r["Id"] for r in read_csv(a / "patients.csv")}
    for name in (
        "encounters",
        "conditions",
        "medications",
        "procedures",
        "observations",
        "immunizations",
        "allergies",
        "devices",
    ):
        for row in read_csv(a / f"{name}.csv"):
            if row.get("PATIENT"):
                ids["ehr_site_a"].add(row["PATIENT"])
    b = population.folder("ehr_site_b")
    for path in b.glob("*.ndjson"):
        for line in ndjson(path):
            try:
                resource = json.loads(line)
            except json.JSONDecodeError:
                continue  # a malformed line, counted in the truth
            if resource["resourceType"] == "Patient":
                ids["ehr_site_b"].add(resource["id"])
            reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
            if reference.startswith("Patient/"):
                ids["ehr_site_b"].add(reference.removeprefix("Patient/"))
    for path in population.folder("payer").glob("*.csv"):
        ids["payer"] |= {r["DESYNPUF_ID"] for r in read_csv(path) if r.get("DESYNPUF_ID")}
    ids["lab"] |= {r["SOURCE_PERSON_ID"] for r in read_csv(population.folder("lab") / "sample_manifest.csv")}
    return ids


def test_truth_joins_every_landing_person_record_and_back(population):
    truth = read_csv(population.truth / "person_records.csv")
    by_source: dict[str, set[str]] = {}
    for row in truth:
        by_source.setdefault(row["SOURCE"], set()).add(row["SOURCE_PERSON_ID"])
    landing = _landing_person_ids(population)
    for source, found in landing.items():
        assert found == by_source[source], source
    persons = {r["TRUE_PERSON_ID"] for r in read_csv(population.truth / "persons.csv")}
    assert {r["TRUE_PERSON_ID"] for r in truth} <= persons
    assert len(persons) == 80
    # duplicates: two records of one person in one source
    duplicates = [r for r in truth if r["IS_DUPLICATE"] == "1"]
    assert duplicates
    main = {(r["SOURCE"], r["TRUE_PERSON_ID"]) for r in truth if r["IS_DUPLICATE"] == "0"}
    assert all((r["SOURCE"], r["TRUE_PERSON_ID"]) in main for r in duplicates)


def test_expected_counts_match_the_files(population):
    for row in read_csv(population.truth / "expected_counts.csv"):
        path = population.out / row["FILE"]
        assert path.exists(), row["FILE"]
        if row["ENTITY"] in ("vcf", "vcf_index"):
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if path.suffix == ".ndjson":
            assert len(lines) == int(row["ROWS"]), row["FILE"]
            broken = sum(1 for line in lines if not _is_json(line))
            assert broken == int(row["MALFORMED_ROWS"]), row["FILE"]
        else:
            records = list(csv.reader(io.StringIO(text)))
            assert len(records) - 1 == int(row["ROWS"]), row["FILE"]
            ragged = sum(1 for r in records[1:] if len(r) != len(records[0]))
            assert ragged == int(row["MALFORMED_ROWS"]), row["FILE"]
    report = population.report
    assert report.malformed_rows() > 0
    assert sum(f.unmapped_code_rows for f in report.files) > 0
    assert sum(f.invalid_date_rows for f in report.files) > 0
    assert json.loads((population.truth / "report.json").read_text())["persons"] == 80


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------------- raw ingest


@pytest.mark.parametrize("source", ["ehr_site_a", "ehr_site_b", "payer", "lab"])
def test_raw_ingest_accepts_the_landing_zone(population, tmp_path, source):
    spec = load_registry().get(source)
    landing, batch = population.landing, population.batch
    if source == "lab":  # the manifest alone, as a batch of its own: the VCFs' calls are counted elsewhere
        landing = tmp_path / "landing"
        (landing / "lab" / batch).mkdir(parents=True)
        shutil.copy(population.landing / "lab" / batch / "sample_manifest.csv", landing / "lab" / batch)
    report = ingest_batch(tmp_path / "lake", landing, spec, batch)
    assert report.files
    assert not report.failed, [(f.relative_path, f.error) for f in report.failed]
    assert all(f.status == Status.INGESTED and f.reconciles for f in report.files)
    quarantined = sum(f.rows_quarantined for f in report.files)
    assert quarantined == population.report.malformed_rows(source)
    stored = sum(f.total_stored for f in report.files)
    expected = sum(
        f.rows - f.malformed_rows
        for f in population.report.files_of(source)
        if f.entity not in ("vcf", "vcf_index")
    )
    assert stored == expected


# ---------------------------------------------------------------------------------- coherence


def test_nothing_happens_after_death_and_treatments_follow_conditions(population):
    truth = read_csv(population.truth / "person_records.csv")
    persons = {r["TRUE_PERSON_ID"]: r for r in read_csv(population.truth / "persons.csv")}
    person_of = {r["SOURCE_PERSON_ID"]: r["TRUE_PERSON_ID"] for r in truth}
    folder = population.folder("ehr_site_a")
    for row in read_csv(folder / "encounters.csv"):
        death = persons[person_of[row["PATIENT"]]]["DEATH_DATE"]
        if death and "-13-" not in row["START"]:
            assert row["START"][:10] <= death
    # keyed by description: an unmapped (local) code replaces the code, not the description
    onsets: dict[tuple[str, str], str] = {}
    for row in read_csv(folder / "conditions.csv"):
        key = (person_of[row["PATIENT"]], row["DESCRIPTION"])
        onsets[key] = min(onsets.get(key, "9999"), row["START"])
    checked = 0
    for row in read_csv(folder / "medications.csv"):
        key = (person_of[row["PATIENT"]], row["REASONDESCRIPTION"])
        if row["REASONCODE"] and key in onsets and "-13-" not in row["START"] and "-13-" not in onsets[key]:
            assert onsets[key] <= row["START"][:10]
            checked += 1
    assert checked > 10


def test_brca_carriers_have_breast_cancer_in_ehr_and_claims(population):
    persons = read_csv(population.truth / "persons.csv")
    truth = read_csv(population.truth / "person_records.csv")
    cases = {
        p["TRUE_PERSON_ID"]
        for p in persons
        if p["CARRIED_VARIANT"].startswith("brca") and p["BREAST_CANCER_ONSET"]
    }
    assert cases
    person_of = {r["SOURCE_PERSON_ID"]: r["TRUE_PERSON_ID"] for r in truth}
    ehr = {
        person_of[r["PATIENT"]]
        for r in read_csv(population.folder("ehr_site_a") / "conditions.csv")
        if r["CODE"] == "254837009"
    }
    claims = set()
    for path in population.folder("payer").glob("*Claims*.csv"):
        for row in read_csv(path):
            codes = {v for k, v in row.items() if k and k.startswith("ICD9_DGNS_CD")}
            if codes & {"C50919", "C50929"}:
                claims.add(person_of[row["DESYNPUF_ID"]])
    assert cases & ehr
    assert cases & claims


def test_labs_carry_ucum_units_and_plausible_values(population):
    ranges = {"8480-6": (85, 210), "2339-0": (55, 450), "4548-4": (4.0, 14.0), "718-7": (6.5, 19)}
    units = {
        "8480-6": "mm[Hg]",
        "2339-0": "mg/dL",
        "4548-4": "%",
        "718-7": "g/dL",
        "8302-2": "cm",
        "29463-7": "kg",
    }
    seen = set()
    for row in read_csv(population.folder("ehr_site_a") / "observations.csv"):
        if row["CODE"] in units and row.get("UNITS") is not None:
            assert row["UNITS"] == units[row["CODE"]]
            seen.add(row["CODE"])
        if row["CODE"] in ranges and row.get("VALUE"):
            low, high = ranges[row["CODE"]]
            assert low <= float(row["VALUE"]) <= high
    assert {"8480-6", "8302-2", "29463-7"} <= seen


def test_default_density_is_at_least_100_events_per_person(tmp_path):
    report = generate(tmp_path, 400, 9)
    assert report.events_per_person >= 100
    assert report.source_records["ehr_site_a"] > 0 and report.source_records["payer"] > 0


# ---------------------------------------------------------------------------------- identity noise


def test_identity_noise_twins_and_families(population):
    records = read_csv(population.truth / "person_records.csv")
    flags = {k: sum(int(r[k]) for r in records) for k in ("TYPO", "NICKNAME", "OLD_ADDRESS", "SSN_MISSING")}
    assert flags["TYPO"] > 0 and flags["SSN_MISSING"] > 0
    persons = read_csv(population.truth / "persons.csv")
    by_id = {p["TRUE_PERSON_ID"]: p for p in persons}
    twins = [p for p in persons if p["TWIN_OF"]]
    assert twins
    for p in twins:
        other = by_id[p["TWIN_OF"]]
        assert (p["BIRTH_DATE"], p["ADDRESS"], p["HOUSEHOLD_ID"]) == (
            other["BIRTH_DATE"],
            other["ADDRESS"],
            other["HOUSEHOLD_ID"],
        )
        assert p["FIRST_NAME"] != other["FIRST_NAME"] and p["SSN"] != other["SSN"]
    assert len({p["SSN"] for p in persons}) == len(persons)
    households = {}
    for p in persons:
        households.setdefault(p["HOUSEHOLD_ID"], []).append(p)
    assert any(len(members) > 1 for members in households.values())


def test_noise_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="typo_rate"):
        NoiseConfig(typo_rate=1.5)
    with pytest.raises(ConfigError, match="overlap"):
        NoiseConfig(coverage_ehr_site_a=0.9, coverage_ehr_site_b=0.1, overlap_site_b_given_a=0.9)


def test_generate_refuses_a_used_folder(tmp_path):
    generate(tmp_path, 3, 1)
    with pytest.raises(ConfigError, match="empty output folder"):
        generate(tmp_path, 3, 1)


# ---------------------------------------------------------------------------------- catalogue vs vocabulary


def test_catalogue_codes_are_in_the_bundled_vocabulary():
    concept = REPO / "vocab" / "CONCEPT.csv"
    if not concept.exists():
        pytest.skip("vocab/CONCEPT.csv is not built yet (the bundled vocabulary is work in progress)")
    from rwe_assets.synthetic.catalogue_reader import load_catalogue

    present: set[tuple[str, str]] = set()
    with open(concept, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns = [c.lower() for c in next(reader)]
        vocabulary, code = columns.index("vocabulary_id"), columns.index("concept_code")
        for row in reader:
            present.add((row[vocabulary], row[code]))
    coded = load_catalogue().coded()
    missing = sorted(
        (v, c) for v in ("SNOMED", "RxNorm", "LOINC", "CVX") for c in coded[v] if (v, c) not in present
    )
    assert not missing


# ---------------------------------------------------------------------------------- command line


def test_cli_writes_a_population(tmp_path, capsys):
    assert main(["--persons", "12", "--seed", "2", "--out", str(tmp_path), "--set", "typo_rate=0.5"]) == 0
    out = capsys.readouterr().out
    assert "12 persons" in out and "clinical events per person" in out
    assert (tmp_path / "landing" / "payer" / "batch_0001" / "members.csv").exists()
    assert main(["--persons", "3", "--out", str(tmp_path / "x"), "--set", "nope=1"]) == 2
