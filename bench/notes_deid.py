"""Note de-identification throughput: lib/staging/deid.py against a bare pass over the same notes.

    .venv/bin/python bench/notes_deid.py [--copies 1 4] [--no-old]

Reads the bundled FHIR sample (data/sample/fhir13: 13 patients, 1,215 DocumentReference notes) and
builds two in-memory DuckDB tables shaped like staging's candidates: cand_person_pii from the Patient
resources and cand_note from the decoded notes. `--copies k` repeats both k times under new person
ids (k = 4 gives about the 3,927 notes of the issue's staging run). For each size, in this process:

  bare  the same I/O as the real step with no matching: read every note from DuckDB, copy its text,
        write every row back with the same UPDATE ... FROM an Arrow table;
  deid  deid.redact_note_table (one matcher per person, notes grouped by person);
  old   (unless --no-old) the previous SQL: one regexp_replace pattern per person built in SQL
        and run twice, then the Synthea-name pattern (kept here only to compare against).

Prints notes, persons, MB of text, seconds, notes/s, ms per note and each phase's ratio to bare.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib.staging import deid
from rwe_assets.lib.staging.build import staging_connection

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "fhir13"
PII_COLUMNS = (
    "source_system, source_person_id, given_name, family_name, maiden_name, birth_date, ssn, address_line, "
    "city, zip, phone, drivers_license, passport"
)


def _resources(name: str) -> list[dict]:
    text = gzip.decompress((SAMPLE / f"{name}.000.ndjson.gz").read_bytes()).decode()
    return [json.loads(line) for line in text.splitlines()]


def _identifier(patient: dict, code: str) -> str | None:
    for ident in patient.get("identifier", []):
        if any(c.get("code") == code for c in ident.get("type", {}).get("coding", [])):
            return ident.get("value")
    return None


def _pii_row(patient: dict, copy: int) -> dict:
    names = {n.get("use"): n for n in patient.get("name", [])}
    official = names.get("official") or next(iter(names.values()), {})
    address = (patient.get("address") or [{}])[0]
    phone = next((t["value"] for t in patient.get("telecom", []) if t.get("system") == "phone"), None)
    return {
        "source_system": "bench",
        "source_person_id": f"{patient['id']}-{copy}",
        "given_name": " ".join(official.get("given", [])),
        "family_name": official.get("family"),
        "maiden_name": names.get("maiden", {}).get("family"),
        "birth_date": patient.get("birthDate"),
        "ssn": _identifier(patient, "SS"),
        "address_line": " ".join(address.get("line", [])),
        "city": address.get("city"),
        "zip": address.get("postalCode"),
        "phone": phone,
        "drivers_license": _identifier(patient, "DL"),
        "passport": _identifier(patient, "PPN"),
    }


def load(con: duckdb.DuckDBPyConnection, copies: int) -> tuple[int, int, float]:
    patients, documents = _resources("Patient"), _resources("DocumentReference")
    pii = [_pii_row(p, c) for c in range(copies) for p in patients]
    notes = [
        (
            "bench",
            f"{d['subject']['reference'].split('/')[-1]}-{c}",
            base64.b64decode(d["content"][0]["attachment"]["data"]).decode(),
        )
        for c in range(copies)
        for d in documents
    ]
    con.register("pii_arrow", pa.Table.from_pylist(pii))
    con.execute(
        f"CREATE OR REPLACE TABLE cand_person_pii AS SELECT {PII_COLUMNS.replace('birth_date', 'birth_date::DATE AS birth_date')}, "
        # staged since the bench was written: the sample's Patients state no contact; ids beyond the
        # columns above are not read here
        "NULL::VARCHAR AS contact_names, NULL::STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[] AS identifiers "
        "FROM pii_arrow"
    )
    note_table = pa.table(
        {k: [n[i] for n in notes] for i, k in enumerate(("source_system", "source_person_id", "note_text"))}
    )
    con.register("notes_arrow", note_table)
    con.execute("CREATE OR REPLACE TABLE notes_landed AS SELECT * FROM notes_arrow")
    megabytes = sum(len(n[2].encode()) for n in notes) / 1e6
    return len(notes), len(pii), megabytes


def fresh_notes(con) -> None:
    con.execute("CREATE OR REPLACE TABLE cand_note AS SELECT * FROM notes_landed")


def bare(con) -> None:
    """Read, copy and write back every note: the I/O floor of the step."""
    rows = con.execute("SELECT rowid, note_text FROM cand_note WHERE note_text IS NOT NULL").fetchall()
    keys = [r[0] for r in rows]
    texts = ["".join([r[1], ""]) for r in rows]
    deid._write_back(con, "cand_note", keys, texts)


def old(con) -> None:
    """The pattern-per-note SQL this module replaced (lib/staging/build.py before issue 20)."""
    edge = r"[^\p{L}\p{N}]"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE note_identifier_pattern AS
        WITH identifiers AS (
            SELECT source_system, source_person_id, trim(unnest(flatten([
                string_split(coalesce(given_name, ''), ' '), string_split(coalesce(family_name, ''), ' '),
                string_split(coalesce(maiden_name, ''), ' '),
                [address_line, phone, ssn, drivers_license, passport]]))) AS value
            FROM cand_person_pii),
        forms AS (
            SELECT source_system, source_person_id, value FROM identifiers UNION
            SELECT source_system, source_person_id, regexp_replace(value, '[0-9]+$', '') FROM identifiers)
        SELECT source_system, source_person_id,
               '(?i)(^|{edge})(' || string_agg(regexp_escape(value), '|' ORDER BY length(value) DESC)
               || ')({edge}|$)' AS pattern
        FROM forms WHERE length(value) >= 2 GROUP BY ALL""")
    redact = "regexp_replace(regexp_replace({0}, {1}, '\\1{2}\\3', 'g'), {1}, '\\1{2}\\3', 'g')"
    con.execute(f"""UPDATE cand_note n SET note_text = {redact.format("n.note_text", "p.pattern", "[REDACTED]")}
        FROM note_identifier_pattern p
        WHERE p.source_system = n.source_system AND p.source_person_id = n.source_person_id""")
    names = redact.format("note_text", "$names", "[NAME]").replace("\\3", "\\2")
    con.execute(
        f"UPDATE cand_note SET note_text = {names}",
        {"names": rf"(^|{edge})\p{{Lu}}\p{{Ll}}+[0-9]+({edge}|$)"},
    )


def timed(con, phase) -> tuple[float, float]:
    """Wall and CPU seconds of one phase on a fresh copy of the notes (CPU time is the steadier
    figure on a shared machine: DuckDB's UPDATE may use a second thread, the matching does not)."""
    fresh_notes(con)
    wall, cpu = time.perf_counter(), time.process_time()
    phase(con)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-old", action="store_true")
    args = parser.parse_args(argv)
    phases = {"bare": bare, "deid": lambda c: deid.redact_note_table(c, "cand_note", "cand_person_pii")}
    if not args.no_old:
        phases["old"] = old
    print(
        f"{'notes':>7} {'persons':>7} {'text MB':>7}  {'phase':<5} {'wall s':>7} {'cpu s':>7} {'notes/s':>9} "
        f"{'ms/note':>8} {'x bare':>7} {'cpu x bare':>10}"
    )
    for copies in args.copies:
        con = staging_connection()
        notes, persons, megabytes = load(con, copies)
        seconds = {name: timed(con, phase) for name, phase in phases.items()}
        base_wall, base_cpu = seconds["bare"]
        for name, (wall, cpu) in seconds.items():
            print(
                f"{notes:>7,} {persons:>7,} {megabytes:>7.1f}  {name:<5} {wall:>7.2f} {cpu:>7.2f} "
                f"{notes / wall:>9,.0f} {1000 * wall / notes:>8.3f} {wall / base_wall:>7.1f} {cpu / base_cpu:>10.1f}"
            )
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
