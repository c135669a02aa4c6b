"""PII beyond the CDM columns: a generated four-source population (60 persons, the population of
test_pipeline's generated test) with bad records planted (a bad birth and death date, a malformed CSV
line, a broken NDJSON line, a member with a bad birth date, a lab sample its VCF does not hold, each
carrying identifiers of its own), ingested
and built through Dagster as `rwe ingest` runs it, then every output a user or operator sees is
searched for the sources' identifiers, read from the landing files and the generator's truth apart
from the pipeline's code (birth dates as written, in ISO and compact forms):

- every column of every schema of the published DuckDB, the build file beside it (warehouse/ is
  the analyst group's) and the de-identified extract;
- the DQD JSON export, the lake's audit trail, manifest, quarantine, merge, retirement and
  linkage-metric tables (each must exist: a table renamed would pass unread): the quarantines' reasons, fields and details (their `raw_text`, the source line, and a
  person row's `record_key`, its source id, stay in the owner-only lake as raw and staging hold
  them: docs/operations.md, "Access");
- every Dagster event of every run (serialized: messages, metadata, check descriptions, failures);
- every Python log record emitted during the runs, and what the steps print (the UI's compute logs).

DATE and TIMESTAMP columns of the published CDM hold real birth dates by design (a limited data set,
docs/concepts.md): birth dates are searched in text only. The lab's sample id is OMOP's
specimen_source_id in the limited data set (cleared in the extract, docs/governance.md): found only
there. The clerical review export shows names, birth dates, addresses and phones to reviewers by
design (docs/linkage.md); its SSNs, licences and passports show their last four characters only
(the last test here; this population leaves no pair for review).

Cost: one build, 40-50 CPU s, built once per run (conftest's `planted_build`: test_pipeline's
generated-population test reads the same build); the search 5 s (str.find per identifier over 9 MB of
text; a regex alternation of them took 65 s on a quiet machine, 2026-12-07)."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import duckdb
import pytest

from rwe_assets_tests.conftest import red_error_checks

# Where the published limited data set holds an identifier by OMOP's definition: {kind: columns}
LIMITED_DATA_SET = {
    "sample id": tuple(
        f"{db}:cdm.{column}"
        for db in ("rwe.duckdb", "build.duckdb")
        for column in ("specimen.specimen_source_id", "variant_occurrence.variant_source_value")
    )
}

# The planted records: each field value is unique to this file, so any hit is a leak.
PLANTED_CSV = {
    "Id": "b7a1c3d2-0000-4e5f-9a8b-planted00001",
    "BIRTHDATE": "24/06/1931",  # not a date the source's layout allows: birth_date_flag, not quarantine
    "DEATHDATE": "1999-02-30",  # impossible: INVALID_DATE on DEATHDATE, the row quarantined
    "SSN": "987-65-4329",
    "DRIVERS": "S99911122",
    "PASSPORT": "X12398745X",
    "FIRST": "Zebulon",
    "LAST": "Quackenbush",
    "ADDRESS": "77 Quince Lane",
    "CITY": "Pittsfield",
    "STATE": "Massachusetts",
    "ZIP": "01201",
}
PLANTED_LINE = "c0ffee00-0000-4e5f-9a8b-planted00002,1944-01-02,,876-54-3219,,,,Philippa,Marchbanks,too,many,"
PLANTED_FHIR = {
    "resourceType": "Patient",
    "id": "planted-fhir-0003",
    "birthDate": "1952-13-45",
    "name": [{"use": "official", "family": "Thistlewood", "given": ["Ottoline"]}],
    "identifier": [{"type": {"coding": [{"code": "SS"}]}, "value": "765-43-2198"}],
    "telecom": [{"system": "phone", "value": "555-777-1212"}],
    "address": [{"line": ["4 Wisteria Terrace"], "city": "Somerville", "state": "MA", "postalCode": "02143"}],
}
PLANTED_BROKEN_JSON = (
    '{"resourceType":"Patient","id":"planted-0004","name":[{"family":"Fotheringay", "given":["Clementine"]}'
)
# a member no beneficiary file holds, with an impossible birth date
PLANTED_MEMBER = "PLANTEDMBR00005,Ignatius,,Pemberton-Vale,19310230,M,654-32-1987,9 Juniper Crescent,Worcester,MA,01608,555-888-1313"
# a sample the VCF does not hold, with an impossible birth date
PLANTED_SAMPLE = "LSPLANTED00006,LPPLANTED00006,Blood,2013-04-06,Panel,GRCh38,Wilhelmina,Ashcombe,1931-02-30,F,site_a,ORD-PLANTED-0006,"


def _plant(landing: Path) -> None:
    patients = next(landing.glob("ehr_site_a/*/patients.csv"))
    with patients.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    row = [PLANTED_CSV.get(column, "") for column in header]
    with patients.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(row)
        handle.write(PLANTED_LINE + "\n")
    with next(landing.glob("payer/*/members.csv")).open("a", encoding="utf-8") as handle:
        handle.write(PLANTED_MEMBER + "\n")
    manifest = next(landing.glob("lab/*/sample_manifest.csv"))
    vcf = next(manifest.parent.glob("*.vcf.gz")).name
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(PLANTED_SAMPLE + vcf + "\n")
    fhir = next(landing.glob("ehr_site_b/*/Patient.000.ndjson"))
    with fhir.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(PLANTED_FHIR) + "\n" + PLANTED_BROKEN_JSON + "\n")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


def build_and_capture(folder: Path) -> Path:
    """The population generated, planted, ingested and built in a fresh Dagster instance; the events,
    log records, printed output and the build's outcome written beside the data (the build is not
    asked to raise: a failed step's events are swept too)."""
    import io
    import os
    from contextlib import redirect_stderr, redirect_stdout

    import dagster as dg
    from dagster._serdes import serialize_value

    from rwe_assets.definitions import defs
    from rwe_assets.defs.jobs import run_landed_batches
    from rwe_assets.lib.sources import load_registry
    from rwe_assets.synthetic import generate

    data = folder / "data"
    generate(data, persons=60, seed=7)
    _plant(data / "landing")
    handler, root = _Records(), logging.getLogger()
    level, previous = root.level, os.environ.get("RWE_DATA_DIR")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    os.environ["RWE_DATA_DIR"] = str(data)
    output = io.StringIO()  # what a step prints: Dagster's compute logs show it in the UI
    try:
        with dg.instance_for_test() as instance, redirect_stdout(output), redirect_stderr(output):
            outcomes = run_landed_batches(defs, instance, data / "landing", load_registry())
            build = defs.resolve_job_def("build").execute_in_process(instance=instance, raise_on_error=False)
            red_checks = red_error_checks(build) if build.get_asset_check_evaluations() else ["no check ran"]
            events = [
                serialize_value(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)
            ]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        if previous is None:
            os.environ.pop("RWE_DATA_DIR", None)
        else:
            os.environ["RWE_DATA_DIR"] = previous
    (folder / "events.txt").write_text("\n".join(events), encoding="utf-8")
    (folder / "logs.txt").write_text("\n".join(handler.lines), encoding="utf-8")
    (folder / "output.txt").write_text(output.getvalue(), encoding="utf-8")
    (folder / "build_success.txt").write_text(str(build.success), encoding="utf-8")
    (folder / "outcomes.json").write_text(  # which landed batches ingested (test_pipeline reads both)
        json.dumps({key: result.success for key, result in outcomes}), encoding="utf-8"
    )
    (folder / "red_checks.json").write_text(json.dumps(red_checks), encoding="utf-8")
    return folder


# --- the identifiers, read from the landing files and the truth ------------------------------------


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


_BIRTH_LAYOUTS = (
    re.compile(r"(?P<y>\d{4})-?(?P<m>\d\d)-?(?P<d>\d\d)"),  # ISO, and DE-SynPUF's 19310624
    re.compile(r"(?P<d>\d\d)/(?P<m>\d\d)/(?P<y>\d{4})"),  # the planted 24/06/1931
)


def birth_forms(value: str) -> tuple[str, ...]:
    """A birth date as written and as the pipeline may write it in text: ISO and compact, whatever
    the source's layout (a member's 19310624 is quarantined as 1931-06-24)."""
    value = (value or "").strip()
    for layout in _BIRTH_LAYOUTS:
        if match := layout.fullmatch(value):
            y, m, d = match.group("y", "m", "d")
            return (value, f"{y}-{m}-{d}", f"{y}{m}{d}")
    return (value,)


def identifiers(data: Path) -> dict[str, str]:
    """{lower-case identifier as written: kind}; values shorter than 5 characters are left out (they
    would match inside codes); birth dates in their ISO and compact forms too (birth_forms)."""
    found: dict[str, str] = {}

    def add(kind: str, *values) -> None:
        for value in values:
            for form in birth_forms(value) if kind == "birth" else ((value or "").strip(),):
                if len(form) >= 5:
                    found.setdefault(form.lower(), kind)

    for p in _rows(data / "truth" / "persons.csv"):
        add("name", f"{p['FIRST_NAME']} {p['LAST_NAME']}", f"{p['LAST_NAME']}, {p['FIRST_NAME']}")
        add("ssn", p["SSN"], p["SSN"].replace("-", ""))
        add("phone", p["PHONE"], re.sub(r"\D", "", p["PHONE"]))
        add("street", p["ADDRESS"], p["OLD_ADDRESS"])
    for p in _rows(next(data.glob("landing/ehr_site_a/*/patients.csv"))):
        add("id", p["Id"], p["DRIVERS"], p["PASSPORT"])
        add("birth", p["BIRTHDATE"])
    for p in _rows(next(data.glob("landing/payer/*/members.csv"))):
        add("id", p["DESYNPUF_ID"])
        add("birth", p["BIRTH_DATE"])
    for p in _rows(next(data.glob("landing/lab/*/sample_manifest.csv"))):
        add("sample id", p["SAMPLE_ID"])
        add("id", p["SOURCE_PERSON_ID"], p["ORDERING_SITE_PATIENT_ID"])
        add("name", f"{p['FIRST_NAME']} {p['LAST_NAME']}")
        add("birth", p["BIRTH_DATE"])
    for line in next(data.glob("landing/ehr_site_b/*/Patient.000.ndjson")).read_text().splitlines():
        try:
            patient = json.loads(line)
        except ValueError:
            continue  # the planted broken line: its values are added below
        add("birth", patient.get("birthDate"))
        add("id", *(i.get("value") for i in patient.get("identifier", [])))
        add("phone", *(t.get("value") for t in patient.get("telecom", [])))
        add("street", *(line for a in patient.get("address", []) for line in a.get("line", [])))
        add(
            "name",
            *(f"{' '.join(n.get('given', []))} {n.get('family', '')}" for n in patient.get("name", [])),
        )
    planted = PLANTED_CSV
    add("name", f"{planted['FIRST']} {planted['LAST']}", "Philippa Marchbanks", "Fotheringay", "Clementine")
    add("ssn", planted["SSN"], "876-54-3219", "765-43-2198")
    add("id", planted["Id"], planted["DRIVERS"], planted["PASSPORT"], "planted-fhir-0003", "planted-0004")
    add("birth", planted["BIRTHDATE"], planted["DEATHDATE"], "1952-13-45")
    add("street", planted["ADDRESS"], "4 Wisteria Terrace")
    add("phone", "555-777-1212", "555-888-1313")
    add("name", "Ignatius Pemberton-Vale", "Wilhelmina Ashcombe")
    add("planted name", "Pemberton-Vale", "Ashcombe", "Wilhelmina")
    add("ssn", "654-32-1987")
    add("street", "9 Juniper Crescent")
    add("birth", "19310230", "1931-02-30")
    add("planted name", planted["LAST"], "Marchbanks", "Thistlewood", "Quackenbush", "Ottoline", "Zebulon")
    return found


def _found(secret: str, text: str) -> bool:
    at = text.find(secret)
    if not secret.isdigit():
        return at >= 0
    while at >= 0:
        end = at + len(secret)
        if not (at and text[at - 1].isdigit()) and not (end < len(text) and text[end].isdigit()):
            return True
        at = text.find(secret, at + 1)
    return False


class Sweep:
    """Finds identifiers in text. Each identifier is looked for on its own with str.find (C speed: a
    regex alternation of ~700 identifiers took 53 s over the build's 9 MB of text, this under 2 s).
    A number written without separators (an SSN's, a phone's, a compact birth date) counts between
    non-digits only: inside the digits of a timestamp or a duration in the events it would be chance."""

    def __init__(self, secrets: dict[str, str]):
        self.secrets = secrets

    def hits(self, where: str, text: str, skip_kinds: tuple[str, ...] = ()) -> list[str]:
        """'where: kind' for each kind found (never the value: this message may be printed)."""
        text = text.lower()
        kinds = {
            kind for secret, kind in self.secrets.items() if kind not in skip_kinds and _found(secret, text)
        }
        return [f"{where}: {kind}" for kind in sorted(kinds)]

    def database(self, path: Path) -> list[str]:
        found = []
        with duckdb.connect(str(path), read_only=True) as con:
            columns = con.execute(
                "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE NOT internal ORDER BY ALL"
            ).fetchall()
            for schema, table, column, data_type in columns:
                dated = data_type.startswith(("DATE", "TIMESTAMP"))
                values = con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
                ).fetchall()
                where = f"{path.name}:{schema}.{table}.{column}"
                allowed = tuple(k for k, places in LIMITED_DATA_SET.items() if where in places)
                found += self.hits(where, "\n".join(v[0] for v in values), ("birth",) * dated + allowed)
        return found

    def lake_table(self, lake_dir: Path, *parts: str, skip_columns: tuple[str, ...] = ()) -> list[str]:
        from rwe_assets.lib import lake

        path = lake.table_path(lake_dir, *parts)
        # a table renamed or no longer written would pass the sweep unread
        assert lake.exists(path), f"lake:{'/'.join(parts)} does not exist"
        table = lake.read_table(path)
        return [
            hit
            for column in table.schema.names
            if column not in skip_columns
            for hit in self.hits(
                f"lake:{'/'.join(parts)}.{column}", "\n".join(map(str, table.column(column).to_pylist()))
            )
        ]


OPERATOR_LAKE_TABLES = (
    ("audit", "trail"),
    ("raw", "_manifest"),
    ("raw", "_quarantine"),
    ("staging", "_quarantine"),
    ("staging", "_merged"),
    ("staging", "_retired"),
    ("staging", "specimen_quarantine"),
    ("staging", "variant_quarantine"),
    ("staging", "_not_modelled"),
    ("linkage", "metrics"),
)


@pytest.mark.slow  # the shared build: 50-100 CPU s
def test_no_identifier_reaches_any_output_a_user_or_operator_sees(planted_build):
    data = planted_build / "data"
    assert (planted_build / "build_success.txt").read_text() == "True"
    sweep = Sweep(identifiers(data))
    assert len(sweep.secrets) > 300
    leaks = []
    # build.duckdb too: warehouse/ is the analyst group's folder
    for name in ("rwe.duckdb", "rwe_deid.duckdb", "build.duckdb"):
        leaks += sweep.database(data / "warehouse" / name)
    leaks += sweep.hits(
        "dq_results.json", (data / "warehouse" / "dq_results.json").read_text(encoding="utf-8")
    )
    for parts in OPERATOR_LAKE_TABLES:
        leaks += sweep.lake_table(data / "lake", *parts, skip_columns=("raw_text", "record_key", "sample_id"))
    leaks += sweep.hits("dagster events", (planted_build / "events.txt").read_text(encoding="utf-8"))
    leaks += sweep.hits("python log records", (planted_build / "logs.txt").read_text(encoding="utf-8"))
    leaks += sweep.hits("stdout and stderr", (planted_build / "output.txt").read_text(encoding="utf-8"))
    assert leaks == []


@pytest.mark.slow  # the shared build
def test_the_planted_bad_records_are_accounted_for_by_file_line_and_field(planted_build):
    """The sweep's planted records reached the pipeline (else it proves nothing): the malformed lines
    are quarantined in raw with their line kept, the impossible death date, the member no beneficiary
    file holds and the sample its VCF does not hold in staging by reason and field."""
    from rwe_assets.lib import lake

    lake_dir = planted_build / "data" / "lake"
    raw = lake.read_table(lake.table_path(lake_dir, "raw", "_quarantine")).to_pylist()
    held = [r for r in raw if "Marchbanks" in (r["raw_text"] or "") or "Fotheringay" in (r["raw_text"] or "")]
    assert {r["source"] for r in held} == {"ehr_site_a", "ehr_site_b"}
    assert all(r["_line_number"] and r["reason_code"] for r in held)
    staged = lake.read_table(lake.table_path(lake_dir, "staging", "_quarantine")).to_pylist()
    death = [r for r in staged if r["field"] == "DEATHDATE" and r["_source_file"].endswith("patients.csv")]
    assert death and all(r["reason_code"] == "INVALID_DATE" and r["_line_number"] for r in death)
    member = [
        r
        for r in staged
        if r["_source_file"].endswith("members.csv") and r["record_key"] == "PLANTEDMBR00005"
    ]
    assert [(r["reason_code"], r["field"]) for r in member] == [("ORPHAN_PERSON", "source_person_id")]
    samples = lake.read_table(lake.table_path(lake_dir, "staging", "specimen_quarantine")).to_pylist()
    assert [(r["reason_code"], r["field"]) for r in samples if r["sample_id"] == "LSPLANTED00006"] == [
        ("SAMPLE_NOT_IN_VCF", "SAMPLE_ID")
    ]


def test_the_review_export_masks_ssns_licences_and_passports(tmp_path):
    """test_review's three records (two pairs in review), with an SSN, licence and passport on each: the
    export shows their last four characters, never the whole number."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from rwe_assets.lib import lake
    from rwe_assets_tests.lib.linkage import test_review as linked

    numbers = {"ssn": ("123-45-6789", "123-45-6790", "123-45-6789"), "drivers_license": ("S99911122", "S99933344", "S99911122"),
               "passport": ("X12398745X", "X55566677X", "X12398745X")}  # fmt: skip
    rows = [{**r, **{f: v[i] for f, v in numbers.items()}} for i, r in enumerate(linked.ROWS)]
    lake_dir = tmp_path / "lake"
    columns = ("source_system", "source_person_id", *linked.BASE, "drivers_license", "passport")
    pii = pa.table({c: [r.get(c) for r in rows] for c in columns})
    for name, table in (("person_pii", pii), ("person_source", pii.select([*columns[:2], "_batch_id"]))):
        write_deltalake(str(lake.table_path(lake_dir, "staging", name)), table, mode="overwrite")
    linked.relink(lake_dir)
    exported = linked.export(lake_dir, tmp_path / "pending.csv")
    assert exported
    text = (tmp_path / "pending.csv").read_text(encoding="utf-8")
    assert not [v for values in numbers.values() for v in values if v in text]
    assert {r["ssn_l"] for r in exported} <= {"*6789", "*6790"} and "*1122" in text and "*745X" in text


def test_the_sweep_finds_what_it_looks_for(tmp_path):
    """The sweep can fail: a value planted in a results table, a log line and a date column is found
    (the date column only as text)."""
    sweep = Sweep({"zebulon quackenbush": "name", "987-65-4329": "ssn", "1931-06-24": "birth"})
    path = tmp_path / "leaky.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA results; CREATE TABLE results.notes (detail VARCHAR, born DATE)")
        con.execute("INSERT INTO results.notes VALUES ('ssn 987-65-4329 bad', DATE '1931-06-24')")
    assert sweep.database(path) == ["leaky.duckdb:results.notes.detail: ssn"]
    assert sweep.hits("log", "patient ZEBULON Quackenbush, born 1931-06-24") == ["log: birth", "log: name"]


def test_the_sweep_reads_every_rejected_table_and_birth_dates_in_the_forms_written(tmp_path):
    """A member's birth date is sent as 19310624 and quarantined as 1931-06-24: both forms are searched,
    for every source's layout; staging/_merged (older copies of records) is swept like _quarantine and
    _retired; a table missing from the lake fails the sweep instead of passing unread."""
    assert {("staging", t) for t in ("_quarantine", "_merged", "_retired")} <= set(OPERATOR_LAKE_TABLES)
    for written in ("19310624", "1931-06-24", "24/06/1931"):
        assert set(birth_forms(written)) == {written, "1931-06-24", "19310624"}
    assert birth_forms("1931-02-30") == ("1931-02-30", "1931-02-30", "19310230")  # impossible: as written
    sweep = Sweep(dict.fromkeys(birth_forms("19310624"), "birth"))
    assert sweep.hits("quarantine detail", "birth 1931-06-24 after death") == ["quarantine detail: birth"]
    assert sweep.hits("event", "run 119310624") == []  # inside a longer number: chance
    with pytest.raises(AssertionError, match="staging/_renamed does not exist"):
        sweep.lake_table(tmp_path / "lake", "staging", "_renamed")
