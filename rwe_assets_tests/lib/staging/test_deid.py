"""De-identification of note text (lib/staging/deid.py): the labelled corpus, the person's own values
in their written variants, the Safe Harbor recognizers, and the staging path on the bundled sample.

The corpus (rwe_assets_tests/data/notes_deid/) is hand-written in three parts about different
persons: `dev` (the recognizers were written against it), `heldout` (scored once when they were done;
three general faults it showed were fixed afterwards) and `blind` (written after that, scored once).
docs/notes.md gives the history. Scores are token-level: a token (run of letters or digits) inside a
labelled identifier counts as caught when a redaction covers all of it.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.staging import deid
from rwe_assets.lib.staging.deid import NAME, REDACTED, PersonIdentifiers, person_matcher, token_scores
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry, stage

CORPUS = Path(__file__).resolve().parents[2] / "data" / "notes_deid"
SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "fhir13"
RECALL_TARGET = 0.99
# Over-redaction bound: a matcher that blanks everything would reach recall 1.0; this keeps it honest.
MAX_OTHER_TOKENS_REMOVED = 0.03


def corpus_person(values: dict, with_others: bool) -> PersonIdentifiers:
    """The structured values of a corpus person; relatives' and clinicians' names only if
    `with_others` (staging's person_pii holds neither yet)."""
    present = lambda *keys: tuple(values[k] for k in keys if values.get(k))  # noqa: E731
    return PersonIdentifiers(
        names=present("given_name", "family_name", "maiden_name"),
        other_names=tuple(values["contacts"] + values["clinicians"]) if with_others else (),
        birth_dates=(date.fromisoformat(values["birth_date"]),),
        address_lines=present("address_line"),
        places=present("city"),
        zips=present("zip"),
        phones=present("phone"),
        ids=present("ssn", "source_person_id", "drivers_license", "passport"),
    )


def score(parts: tuple[str, ...], with_others: bool) -> dict[str, float]:
    persons = json.loads((CORPUS / "persons.json").read_text(encoding="utf-8"))
    totals = {"identifier_tokens": 0, "caught": 0, "other_tokens": 0, "removed": 0}
    for part in parts:
        for line in (CORPUS / f"{part}.jsonl").read_text(encoding="utf-8").splitlines():
            note = json.loads(line)
            assert persons[note["person"]]["part"] == part  # each part is about its own persons
            matcher = person_matcher(corpus_person(persons[note["person"]], with_others))
            found = matcher.spans(note["text"])
            counts = token_scores(note["text"], [(s["start"], s["end"]) for s in note["spans"]], found)
            totals = {k: totals[k] + counts[k] for k in totals}
    return {
        **totals,
        "recall": totals["caught"] / totals["identifier_tokens"],
        "other_removed": totals["removed"] / totals["other_tokens"],
    }


HELD_BACK = ("heldout", "blind")


def test_corpus_is_the_size_promised_and_covers_the_kinds():
    lines = [
        line for part in ("dev", *HELD_BACK) for line in (CORPUS / f"{part}.jsonl").read_text().splitlines()
    ]
    assert len(lines) >= 60
    kinds = {s["kind"] for line in lines for s in json.loads(line)["spans"]}
    assert kinds >= {
        "PAT",
        "REL",
        "DOC",
        "DATE",
        "PHONE",
        "FAX",
        "EMAIL",
        "URL",
        "SSN",
        "MRN",
        "ADDR",
        "AGE",
        "FAC",
    }


@pytest.mark.parametrize("parts", [("dev",), HELD_BACK])
def test_recall_with_the_full_structured_data_meets_the_target(parts):
    """The person's values including relatives' and clinicians' names (what deid.py accepts)."""
    result = score(parts, with_others=True)
    print(f"{parts}: {result}")  # the figures docs/notes.md quotes
    assert result["recall"] >= RECALL_TARGET, result
    assert result["other_removed"] <= MAX_OTHER_TOKENS_REMOVED, result


@pytest.mark.parametrize("parts", [("dev",), HELD_BACK])
def test_recall_with_what_staging_holds_today(parts):
    """staging.person_pii has no contacts or clinician names yet, so a relative named without a role
    word ('Grace and Henry request') is missed: measured 0.982 on the held-back notes (docs/notes.md)."""
    result = score(parts, with_others=False)
    print(f"{parts}: {result}")
    assert result["recall"] >= 0.975, result
    assert result["other_removed"] <= MAX_OTHER_TOKENS_REMOVED, result


# --- the issue's probe and the value variants ---------------------------------------------------------

PROBE_PERSON = PersonIdentifiers(
    names=("Maria Elena", "Gutierrez", "Santos"),
    birth_dates=(date(1948, 8, 30),),
    address_lines=("41 Birchwood Court Apt 3",),
    places=("Springfield",),
    zips=("01105",),
    phones=("555-952-9759",),
    ids=("M00482913", "999-52-7781"),
)


def redact(text: str, person: PersonIdentifiers = PROBE_PERSON) -> str:
    return person_matcher(person).redact(text)


def test_the_issue_probe_leaks_nothing():
    note = (
        "Mrs. Gutierrez (DOB 08/30/1948, MRN M00482913) lives at 41 Birchwood Ct., Apt 3. "
        "Phone (555) 952-9759. Daughter Rosa and son Tomas Gutierrez visit daily."
    )
    out = redact(note)
    for value in ("Gutierrez", "08/30/1948", "M00482913", "Birchwood", "952-9759", "Rosa", "Tomas"):
        assert value not in out
    assert out.startswith("Mrs. [REDACTED] (DOB [REDACTED], MRN [REDACTED]) lives at [REDACTED].")


@pytest.mark.parametrize(
    "written",
    [
        "555-952-9759",
        "(555) 952-9759",
        "555.952.9759",
        "555 952 9759",
        "5559529759",
        "+1 555 952 9759",
        "1-555-952-9759",
        "(555)952-9759",
    ],
)
def test_own_phone_in_any_layout(written):
    assert redact(f"call {written} today") == f"call {REDACTED} today"


@pytest.mark.parametrize(
    "written",
    [
        "08/30/1948",
        "8/30/48",
        "1948-08-30",
        "30.08.1948",
        "Aug 30, 1948",
        "August 30th, 1948",
        "30 Aug 1948",
        "30-AUG-1948",
        "the thirtieth of August",
        "19480830",
        "08301948",
    ],
)
def test_birth_date_in_any_layout(written):
    assert redact(f"born {written}.") == f"born {REDACTED}."


@pytest.mark.parametrize(
    "written",
    [
        "41 Birchwood Court Apt 3",
        "41 Birchwood Ct. Apt. 3",
        "41 Birchwood Ct, #3",
        "41 BIRCHWOOD CT",
        "Birchwood Ct",
        "41 Birchwood Court, Apartment 3",
    ],
)
def test_own_address_in_abbreviation_variants(written):
    assert redact(f"lives at {written}; walks daily") == f"lives at {REDACTED}; walks daily"


def test_names_of_relatives_and_clinicians_from_structured_data_become_name():
    person = PersonIdentifiers(names=("Ann",), other_names=("Siobhan O'Brien", "Hubert Okafor"))
    out = redact("ann saw siobhan obrien and Okafor about the annual plan; O\u2019Brien agreed", person)
    assert out == f"{REDACTED} saw {NAME} {NAME} and {NAME} about the annual plan; {NAME} agreed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Seen by Dr. Hubert Okafor today", f"Seen by Dr. {NAME} {NAME} today"),
        ("Read by Laura Fischer, MD, radiology", f"Read by {NAME} {NAME}, MD, radiology"),
        ("her daughter Rosa called", f"her daughter {NAME} called"),
        ("e-mail j.doe@example.org now", f"e-mail {REDACTED} now"),
        ("see https://portal.example/p/123.", f"see {REDACTED}."),
        ("from 10.4.22.187 at noon", f"from {REDACTED} at noon"),
        ("SSN 999 88 2314", f"SSN {REDACTED}"),
        ("Acct #A-2290014", f"Acct #{REDACTED}"),
        ("a 97-year-old man", f"a {REDACTED}-year-old man"),
        ("ninety-four year old", f"{REDACTED} year old"),
        ("Age: 91", f"Age: {REDACTED}"),
        ("Lowell, MA 01852-3301", f"{REDACTED}, MA {REDACTED}"),
        ("admitted to Lowell General Hospital", f"admitted to {REDACTED}"),
        ("since March, seen on June 3", f"since {REDACTED}, seen on {REDACTED}"),
        ("Liane379 Kunze215 presents", f"{NAME} {NAME} presents"),
    ],
)
def test_recognizers_without_structured_data(text, expected):
    assert redact(text, PersonIdentifiers()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "BP 138/84, HR 96, SpO2 91% on 2 L",
        "metformin 1000 mg twice daily",
        "quit smoking in 1990",
        "pain 6/10",
        "Apgar 8/9",
        "MMSE 12/30",
        "Pumping 4-6 times a day",
        "you may return to work",
        "HbA1c 7.8% in 2022",
        "Annual review, Leeward",
        "G2P1 at 28 weeks",
        "a 75 yo woman",
    ],
)
def test_clinical_text_that_is_no_identifier_is_kept(text):
    assert redact(text, PersonIdentifiers(names=("Ann",))) == text


# --- staging: one matcher per person, and the bundled sample ------------------------------------------


def test_one_matcher_is_compiled_per_person_not_per_note(monkeypatch):
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE pii (source_system VARCHAR, source_person_id VARCHAR, given_name VARCHAR, "
        "family_name VARCHAR, maiden_name VARCHAR, birth_date DATE, ssn VARCHAR, address_line VARCHAR, "
        "city VARCHAR, zip VARCHAR, phone VARCHAR, drivers_license VARCHAR, passport VARCHAR, "
        "contact_names VARCHAR, identifiers STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[])"
    )
    con.execute(
        "INSERT INTO pii VALUES ('s', 'p1', 'Ann', 'Lee', NULL, '1950-01-02', NULL, '12 Elm St', "
        "'Boston', '02110', '555-201-3344', NULL, NULL, NULL, NULL), ('s', 'p2', 'Bo', 'Kim', NULL, NULL, NULL, "
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, [{'type': 'mrn', 'system': 's', 'value': 'MRN88123'}])"
    )
    con.execute("CREATE TABLE notes (source_system VARCHAR, source_person_id VARCHAR, note_text VARCHAR)")
    con.execute(
        "INSERT INTO notes VALUES ('s','p1','Ann Lee, 1/2/1950'), ('s','p2','Bo Kim'), "
        "('s','p1','12 Elm Street'), ('s','p2','no identifier'), ('s','p1',NULL), ('s','p2','chart MRN88123')"
    )
    built = []
    real = deid.person_matcher
    monkeypatch.setattr(deid, "person_matcher", lambda p, extra=(): built.append(p) or real(p, extra))

    counts = deid.redact_note_table(con, "notes", "pii")

    assert len(built) == 2
    assert counts == {"notes": 5, "persons": 2, "changed": 4}  # an MRN among the identifiers goes too
    texts = con.execute("SELECT note_text FROM notes WHERE note_text IS NOT NULL").fetchall()
    assert sorted(r[0] for r in texts) == sorted(
        [
            f"{REDACTED} {REDACTED}",
            f"{REDACTED} {REDACTED}, {REDACTED}",
            REDACTED,
            "no identifier",
            f"chart {REDACTED}",
        ]
    )


def _sample_files() -> dict[str, str]:
    names = ("Patient", "Encounter", "DocumentReference", "Practitioner", "Organization")
    return {
        f"{n}.000.ndjson": gzip.decompress((SAMPLE / f"{n}.000.ndjson.gz").read_bytes()).decode()
        for n in names
    }


def structured_leaks(text: str, pii: dict) -> list[str]:
    """Which fields of the person's structured data a note still holds (field names, never values).
    Written apart from deid.py on purpose: plain searches for the values in their common layouts."""
    lower, digits = text.lower(), re.sub(r"\D", "", text)
    leaks = []
    for field in ("given_name", "family_name", "maiden_name", "city"):
        for word in re.split(r"\s+", pii[field] or ""):
            for form in {word.lower(), re.sub(r"\d+$", "", word).lower()}:
                if len(form) >= 2 and re.search(rf"(?<![^\W_]){re.escape(form)}(?![^\W_])", lower):
                    leaks.append(field)
    for field in ("address_line", "drivers_license", "passport", "source_person_id", "zip"):
        if pii[field] and pii[field].lower() in lower:
            leaks.append(field)
    for field in ("phone", "ssn"):
        value = re.sub(r"\D", "", pii[field] or "")
        if len(value) >= 7 and value in digits:
            leaks.append(field)
    born = pii["birth_date"]
    if born and any(
        f in text for f in (born.isoformat(), born.strftime("%m/%d/%Y"), born.strftime("%B %-d"))
    ):
        leaks.append("birth_date")
    return leaks


def test_the_bundled_sample_notes_keep_no_structured_identifier(tmp_path):
    lake_dir, _ = stage(tmp_path, fhir_registry(), _sample_files())
    notes = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
    pii = {
        r["source_person_id"]: r
        for r in lake.read_table(lake.table_path(lake_dir, "staging", "person_pii")).to_pylist()
    }
    assert len(notes) > 1000 and len(pii) == 13
    leaks = [
        (n["record_key"], f)
        for n in notes
        for f in structured_leaks(n["note_text"], pii[n["source_person_id"]])
    ]
    assert leaks == []
    # the same search finds the identifiers in the notes as landed, so the zero above means something
    before = [f for n in _landed_notes() for f in structured_leaks(n[1], pii[n[0]])]
    assert before.count("given_name") > 1000


def _landed_notes() -> list[tuple[str, str]]:
    text = gzip.decompress((SAMPLE / "DocumentReference.000.ndjson.gz").read_bytes()).decode()
    notes = []
    for line in text.splitlines():
        resource = json.loads(line)
        data = resource["content"][0]["attachment"]["data"]
        notes.append((resource["subject"]["reference"].split("/")[-1], base64.b64decode(data).decode()))
    return notes


def test_a_relative_named_in_patient_contact_is_redacted_from_the_notes(tmp_path):
    """FHIR Patient.contact reaches person_pii.contact_names, which the note matcher takes as other
    people's names: a relative named with no role word nearby is caught (the corpus's known miss)."""
    from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir

    person = fhir.patient("p1", contact=[{"name": {"given": ["Henrietta"], "family": "Okonkwo"}}])
    files = {
        "Patient.000.ndjson": fhir.ndjson(person),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "DocumentReference.000.ndjson": fhir.ndjson(
            fhir.document("d1", "Grace and Henrietta asked; okonkwo called.")
        ),
    }
    lake_dir, _ = fhir.stage(tmp_path, fhir.fhir_registry(), files)
    (note,) = fhir.staged(lake_dir, "note")
    assert note["note_text"] == "Grace and [NAME] asked; [NAME] called."
    (pii,) = fhir.staged(lake_dir, "person_pii")
    assert pii["contact_names"] == "Henrietta Okonkwo"


def test_notes_redacted_in_several_passes_match_one_pass(monkeypatch):
    """Persons are split into passes by a hash of their id (memory per pass, not per population): every
    note is redacted once, with its own person's matcher, whatever the number of passes."""

    def redacted(per_pass: int):
        monkeypatch.setattr(deid, "NOTES_PER_PASS", per_pass)
        con = duckdb.connect()
        empty = (
            "ssn",
            "address_line",
            "city",
            "zip",
            "phone",
            "drivers_license",
            "passport",
            "contact_names",
        )
        con.execute(
            "CREATE TABLE pii AS SELECT 's' AS source_system, 'p' || i AS source_person_id, "
            "'Given' || i AS given_name, 'Family' || i AS family_name, NULL::VARCHAR AS maiden_name, "
            f"NULL::DATE AS birth_date, {', '.join(f'NULL::VARCHAR AS {c}' for c in empty)}, "
            "NULL::STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[] AS identifiers FROM range(20) t(i)"
        )
        con.execute(
            "CREATE TABLE notes AS SELECT 's' AS source_system, "
            "CASE WHEN i < 40 THEN 'p' || (i % 20) END AS source_person_id, "
            "'Seen: Given' || (i % 20) || ' Family' || ((i + 1) % 20) || ' and Given' || (i % 20) AS note_text "
            "FROM range(45) t(i)"
        )
        counts = deid.redact_note_table(con, "notes", "pii")
        return counts, sorted(
            con.execute("SELECT source_person_id, note_text FROM notes").fetchall(), key=repr
        )

    one_pass, in_passes = redacted(10_000), redacted(3)
    assert in_passes == one_pass
    counts, rows = one_pass
    assert counts == {"notes": 45, "persons": 21, "changed": 45}  # 20 persons and the notes of none
    # own values are REDACTED, another person's name is a NAME: each note had its own person's matcher
    assert rows.count(("p1", f"Seen: {REDACTED} {NAME} and {REDACTED}")) == 2
    assert rows.count((None, f"Seen: {NAME} {NAME} and {NAME}")) == 5
