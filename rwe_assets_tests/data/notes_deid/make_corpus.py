"""Turn the hand-written, marked-up notes (dev.notes.txt, heldout.notes.txt) into labelled JSONL.

Each note becomes one line: {"id", "person", "part", "text", "spans": [{"start", "end", "kind"}]},
where `text` is the note without markup and each span marks one identifier in it. The person's
structured values stay in persons.json. Run after editing a .notes.txt file:
    .venv/bin/python rwe_assets_tests/data/notes_deid/make_corpus.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = re.compile(r"\[\[([A-Z]+):(.+?)\]\]")
KINDS = {
    "PAT",
    "REL",
    "DOC",
    "DATE",
    "PHONE",
    "FAX",
    "EMAIL",
    "URL",
    "IP",
    "SSN",
    "MRN",
    "ID",
    "ADDR",
    "CITY",
}
KINDS |= {"ZIP", "AGE", "FAC"}


def parse_note(marked: str) -> tuple[str, list[dict]]:
    """Strip the markup; return the plain text and the identifier spans in it."""
    text, spans, last = [], [], 0
    length = 0
    for match in MARK.finditer(marked):
        kind, value = match.groups()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind}")
        before = marked[last : match.start()]
        text.append(before)
        length += len(before)
        spans.append({"start": length, "end": length + len(value), "kind": kind})
        text.append(value)
        length += len(value)
        last = match.end()
    text.append(marked[last:])
    return "".join(text), spans


def read_notes(path: Path, part: str) -> list[dict]:
    notes, header, body = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines() + ["=== end"]:
        if line.startswith("#") and header is None:
            continue
        if line.startswith("=== "):
            if header:
                text, spans = parse_note("\n".join(body).rstrip("\n"))
                notes.append(
                    {"id": header[0], "person": header[1], "part": part, "text": text, "spans": spans}
                )
            header, body = line[4:].split(), []
        else:
            body.append(line)
    return notes


def main() -> None:
    for part in ("dev", "heldout", "blind"):
        notes = read_notes(HERE / f"{part}.notes.txt", part)
        lines = [json.dumps(note, ensure_ascii=False) for note in notes]
        (HERE / f"{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(part, len(notes), "notes,", sum(len(n["spans"]) for n in notes), "identifiers")


if __name__ == "__main__":
    main()
