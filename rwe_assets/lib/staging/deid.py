"""De-identification of clinical note text: the person's own identifiers plus Safe Harbor recognizers.

Two kinds of matcher find identifiers; every hit is replaced before the text is staged:

1. **The person's own values** (PersonIdentifiers), compiled into one pattern per person and run over
   all of that person's notes: each given, family and maiden name (also without Synthea's digit
   suffix, with any apostrophe or hyphen spelling), the street line in its abbreviation variants
   (Court/Ct./Ct, Apt/Apartment/Unit/#, North/N. ...), city, ZIP, phone digits with any separators,
   SSN, MRN, licence and passport numbers with any separators, and the birth date in any layout (the
   generic date recognizer covers most layouts; the own date is a belt to its braces). Relatives' and
   clinicians' names (when the staged data has them) are matched the same way.
2. **Recognizers** for the HIPAA Safe Harbor kinds, compiled once per process: dates except a bare
   year (numeric, ISO, month names and ordinals in words), phone/fax, e-mail, URL, IPv4, SSN, ids
   behind a label (MRN, account, member, licence ...) and any token with five or more digits, ZIP
   codes after a state, ages over 89, street addresses, names after a title, a role or before a
   credential (Dr. X, daughter X, X Y, MD), Synthea-shaped names (Liane379), facility names.

Own values are replaced by REDACTED; names found by recognizers or of other people by NAME, word by
word, so 'Dr. [NAME] [NAME]' still reads as a name. A note is never dropped: a text without hits is
kept as it is. Nothing here logs or returns identifier values except the redacted text itself. The
recognizers are in ``deid_recognizers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from rwe_assets.lib.sql_loader import execute, fill_text
from rwe_assets.lib.staging.deid_recognizers import (
    DIRECTIONS,
    NAME,
    RECOGNIZERS,
    REDACTED,
    STREET_SUFFIXES,
    UNIT_WORDS,
    Recognizer,
)

# the names callers use as deid.<name>
__all__ = [
    "NAME",
    "REDACTED",
    "PersonIdentifiers",
    "PersonMatcher",
    "Recognizer",
    "apply_spans",
    "merge_spans",
    "names_recognizer",
    "person_matcher",
    "redact_note_table",
    "redact_notes",
    "token_scores",
]


# --- the person's own values -------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonIdentifiers:
    """What the staged data knows of one person; every field may be empty."""

    names: tuple[str, ...] = ()  # given, family, maiden (whole strings; split into words here)
    other_names: tuple[str, ...] = ()  # relatives, contacts, clinicians
    birth_dates: tuple[date, ...] = ()
    address_lines: tuple[str, ...] = ()
    places: tuple[str, ...] = ()  # city, county
    zips: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # SSN, MRN / source person id, licence, passport, member id


def _word(value: str) -> str:
    """A regex for one name word: apostrophes and hyphens may be written any way or left out."""
    parts = [re.escape(p) for p in re.split(r"['\u2019`-]", value) if p]
    return r"['\u2019`\- ]?".join(parts)


def _name_words(values: Iterable[str]) -> set[str]:
    words = set()
    for value in values:
        for word in re.split(r"[\s,]+", value or ""):
            word = word.strip(".")
            for form in (word, re.sub(r"\d+$", "", word)):
                if len(re.sub(r"\W", "", form)) >= 2:
                    words.add(form)
    return words


def _digits_any_separator(value: str) -> str | None:
    """Digits (and letters) of an id or phone with any separator between them; None if too short."""
    chars = re.sub(r"[^A-Za-z0-9]", "", value or "")
    if len(chars) < 4:
        return None
    return r"[ \t().\-/]{0,3}".join(re.escape(c) for c in chars)


def _phone_forms(value: str) -> list[str]:
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    form = _digits_any_separator(digits)
    return [rf"(?:\+?1[ \t.\-]*)?\(?{form}"] if form and len(digits) >= 7 else []


def _variants(word: str, table: dict[str, tuple[str, ...]]) -> str | None:
    for forms in table.values():
        if word.lower().rstrip(".") in forms:
            return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + r")\.?"
    return None


def _address_form(line: str) -> str | None:
    """The street line with optional house number and unit, abbreviations in any variant."""
    words = re.findall(r"[#\w'\u2019-]+", line or "")
    unit_at = next((i for i, w in enumerate(words) if re.fullmatch(UNIT_WORDS, w.lower())), len(words))
    street, unit = words[:unit_at], words[unit_at + 1 :]
    number = street.pop(0) if street and street[0][0].isdigit() else None
    if not street:
        return None
    parts = [_variants(w, DIRECTIONS) or _variants(w, STREET_SUFFIXES) or _word(w) for w in street]
    form = r"[ \t.,]+".join(parts)
    if number:
        form = rf"(?:{re.escape(number)}[ \t]+)?{form}"
    if unit:
        form += rf"(?:,?[ \t]*{UNIT_WORDS}\.?[ \t]*#?[ \t]*{re.escape(' '.join(unit))})?"
    return form


def _date_forms(day: date) -> list[str]:
    """A birth date in the layouts the generic recognizers might miss (two-digit years, no separators)."""
    m, d, y = day.month, day.day, day.year
    return [
        rf"0?{m}[/.\- ]0?{d}[/.\- ](?:{y}|{y % 100:02d})",
        rf"0?{d}[/.\- ]0?{m}[/.\- ](?:{y}|{y % 100:02d})",
        rf"{y}[/.\- ]?{m:02d}[/.\- ]?{d:02d}",
        rf"{m:02d}{d:02d}{y}",
    ]


def _alternation(forms: Iterable[str]) -> str | None:
    unique = sorted(set(f for f in forms if f), key=len, reverse=True)
    return "|".join(unique) or None


@dataclass
class PersonMatcher:
    """The compiled patterns of one person: build once, apply to all their notes."""

    own: re.Pattern[str] | None
    others: re.Pattern[str] | None
    extra: tuple[Recognizer, ...] = field(default_factory=tuple)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        lower = text.lower()
        for recognizer in (*RECOGNIZERS, *self.extra):
            found.extend(recognizer.spans(text, lower))
        for pattern, label in ((self.own, REDACTED), (self.others, NAME)):
            if pattern is not None:
                found.extend((m.start("v"), m.end("v"), label) for m in pattern.finditer(text))
        return merge_spans(text, found)

    def redact(self, text: str) -> str:
        return apply_spans(text, self.spans(text))


def _bounded(alternatives: str | None) -> re.Pattern[str] | None:
    if alternatives is None:
        return None
    return re.compile(rf"(?<![^\W_])(?P<v>{alternatives})(?![^\W_])", re.IGNORECASE)


def person_matcher(person: PersonIdentifiers, extra: tuple[Recognizer, ...] = ()) -> PersonMatcher:
    own = [_word(w) for w in _name_words(person.names)]
    own += [_address_form(line) for line in person.address_lines]
    own += [_word(p) for p in person.places if p and len(p) >= 2]
    own += [re.escape(z.strip()) for z in person.zips if z and len(z.strip()) >= 3]
    own += [f for phone in person.phones for f in _phone_forms(phone)]
    own += [_digits_any_separator(i) for i in person.ids]
    own += [f for day in person.birth_dates for f in _date_forms(day)]
    others = [_word(w) for w in _name_words(person.other_names)]
    return PersonMatcher(_bounded(_alternation(own)), _bounded(_alternation(others)), extra)


def names_recognizer(kind: str, names: Iterable[str]) -> Recognizer | None:
    """One recognizer for a batch-wide list of names (care sites, say), compiled once."""
    forms = _alternation(r"[ \t]+".join(_word(w) for w in n.split()) for n in names if n and len(n) >= 4)
    return None if forms is None else Recognizer(kind, _bounded(forms), REDACTED)


# --- spans ---------------------------------------------------------------------------------------------


def merge_spans(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Overlapping spans become one; a name span is cut into its words first, so a run of names reads
    '[NAME] [NAME]'. REDACTED wins over NAME where both cover a character."""
    pieces = []
    for start, end, label in spans:
        if label == NAME:
            pieces += [
                (start + m.start(), start + m.end(), NAME) for m in re.finditer(r"\S+", text[start:end])
            ]
        else:
            pieces.append((start, end, label))
    merged: list[tuple[int, int, str]] = []
    for start, end, label in sorted(pieces):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), REDACTED if REDACTED in (label, last[2]) else NAME)
        else:
            merged.append((start, end, label))
    return merged


def apply_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, label in spans:
        out += [text[last:start], label]
        last = end
    out.append(text[last:])
    return "".join(out)


def redact_notes(notes: Iterable[tuple[object, str]], matcher: PersonMatcher) -> list[tuple[object, str]]:
    """Redact one person's notes ((key, text) pairs) with their matcher."""
    return [(key, matcher.redact(text)) for key, text in notes]


# --- scoring (tests and bench) -------------------------------------------------------------------------


def token_scores(text: str, gold: list[tuple[int, int]], found: list[tuple[int, int, str]]) -> dict[str, int]:
    """Token-level counts: a token (a run of letters or digits) inside a gold span is an identifier
    token; it is caught when a found span covers all of it. Non-identifier tokens that a found span
    touches are removed by mistake."""
    counts = {"identifier_tokens": 0, "caught": 0, "other_tokens": 0, "removed": 0}
    for token in re.finditer(r"[^\W_]+", text):
        start, end = token.span()
        in_gold = any(s <= start and end <= e for s, e in gold)
        if in_gold:
            counts["identifier_tokens"] += 1
            counts["caught"] += any(s <= start and end <= e for s, e, _ in found)
        else:
            counts["other_tokens"] += 1
            counts["removed"] += any(s < end and start < e for s, e, _ in found)
    return counts


# --- staging: the candidate note table -----------------------------------------------------------------

_PII_SQL = """
SELECT source_system, source_person_id,
       list(DISTINCT given_name) || list(DISTINCT family_name) || list(DISTINCT maiden_name) AS names,
       list(DISTINCT birth_date) AS birth_dates,
       list(DISTINCT address_line) AS address_lines,
       list(DISTINCT city) AS places,
       list(DISTINCT zip) AS zips,
       list(DISTINCT phone) AS phones,
       [source_person_id] || list(DISTINCT ssn) || list(DISTINCT drivers_license) || list(DISTINCT passport)
           || flatten(list(list_transform(coalesce(identifiers, []), i -> i.value))) AS ids,
       list(DISTINCT contact_names) AS other_names
FROM {pii}
WHERE source_person_id IS NOT NULL AND hash(source_system, source_person_id) % $passes = $pass
GROUP BY source_system, source_person_id
"""
_NOTES_SQL = """
SELECT rowid, source_system, source_person_id, note_text FROM {notes}
WHERE note_text IS NOT NULL AND hash(source_system, source_person_id) % $passes = $pass
ORDER BY source_system, source_person_id
"""
_WRITE_BACK_SQL = (
    "UPDATE {notes} SET note_text = r.note_text FROM _deid_redacted r WHERE {notes}.rowid = r.row_id"
)
# Notes redacted per pass: Python holds one pass's notes and its persons' identifiers, so memory does
# not grow with the population; persons are split into passes by a hash of their id.
NOTES_PER_PASS = 200_000


def _identifiers(row: dict) -> PersonIdentifiers:
    def values(key: str) -> tuple:
        return tuple(v for v in row[key] or () if v is not None and v != "")

    return PersonIdentifiers(
        names=values("names"),
        birth_dates=values("birth_dates"),
        address_lines=values("address_lines"),
        places=values("places"),
        zips=values("zips"),
        phones=values("phones"),
        ids=values("ids"),
        other_names=values("other_names"),
    )


def redact_note_table(con, notes: str = "cand_note", pii: str = "cand_person_pii", sites: str | None = None):
    """Redact note_text in place in DuckDB table `notes`: one matcher per (source system, person),
    built from `pii` (and the facility names in `sites`, compiled once for the batch); the notes are
    grouped by person so each matcher is compiled once, and persons are taken NOTES_PER_PASS notes'
    worth at a time. Returns {notes, persons, changed}."""
    count = fill_text("SELECT count(*) FROM {notes} WHERE note_text IS NOT NULL", {"notes": notes}, "deid")
    total = con.execute(count).fetchone()[0]
    counts = {"notes": 0, "persons": 0, "changed": 0}
    if not total:  # most sources send no notes: their persons' identifiers would be gathered for nothing
        return counts
    extra: tuple[Recognizer, ...] = ()
    if sites:
        query = fill_text("SELECT DISTINCT care_site_name FROM {sites}", {"sites": sites}, "deid sites")
        site_names = [r[0] for r in con.execute(query).fetchall()]
        recognizer = names_recognizer("care_site", site_names)
        extra = (recognizer,) if recognizer else ()
    passes = -(-total // NOTES_PER_PASS)
    for number in range(passes):
        for key, n in _redact_pass(con, notes, pii, extra, {"passes": passes, "pass": number}).items():
            counts[key] += n
    return counts


def _redact_pass(con, notes: str, pii: str, extra: tuple[Recognizer, ...], bucket: dict) -> dict[str, int]:
    """Redact the notes of the persons in `bucket` (pass number `pass` of `passes`, by a hash of the
    person)."""
    cursor = execute(con, fill_text(_PII_SQL, {"pii": pii}, "deid persons"), bucket)
    columns = [d[0] for d in cursor.description]
    people = {(r[0], r[1]): _identifiers(dict(zip(columns, r, strict=True))) for r in cursor.fetchall()}
    rows = execute(con, fill_text(_NOTES_SQL, {"notes": notes}, "deid notes"), bucket).fetchall()
    keys, texts, current, matcher = [], [], None, None
    for row_id, system, person, text in rows:
        if (system, person) != current:
            current = (system, person)
            matcher = person_matcher(people.get(current, PersonIdentifiers()), extra)
        redacted = matcher.redact(text)
        if redacted != text:
            keys.append(row_id)
            texts.append(redacted)
    _write_back(con, notes, keys, texts)
    return {"notes": len(rows), "persons": len({(r[1], r[2]) for r in rows}), "changed": len(keys)}


def _write_back(con, notes: str, keys: list[int], texts: list[str]) -> None:
    import pyarrow as pa  # imported here: the pure matcher above needs no Arrow

    if not keys:
        return
    con.register("_deid_redacted", pa.table({"row_id": pa.array(keys, pa.int64()), "note_text": texts}))
    try:
        con.execute(fill_text(_WRITE_BACK_SQL, {"notes": notes}, "deid write-back"))
    finally:
        con.unregister("_deid_redacted")
