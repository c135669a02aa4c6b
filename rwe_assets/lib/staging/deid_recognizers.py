"""The Safe Harbor recognizers of note de-identification (``deid``): one compiled pattern per identifier
kind (dates, phones, e-mail, ids, ZIP codes, ages over 89, addresses, names in context, facilities),
and the building blocks the person's own values are matched with too (street suffixes, directions,
unit words)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

REDACTED = "[REDACTED]"
NAME = "[NAME]"

# --- building blocks --------------------------------------------------------------------------------


def _class_members(test: Callable[[str], bool]) -> str:
    """The BMP characters passing `test`, as ranges for a regex character class (re has no \\p{Lu})."""
    spans, start = [], None
    for code in range(0x10001):
        inside = code < 0x10000 and test(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            spans.append(re.escape(chr(start)) + ("-" + re.escape(chr(code - 1)) if code - 1 > start else ""))
            start = None
    return "".join(spans)


# Names and places are written in any alphabet ('Renée', 'Müller', 'Élodie'): upper- and lower-case
# letters of all of Unicode, and a word's letters with combining marks (a decomposed 'é' is 'e' + U+0301)
UPPER_CHARS = _class_members(str.isupper)
_MARKS = _class_members(lambda c: unicodedata.category(c).startswith("M"))
LETTERS = _class_members(str.isalpha) + _MARKS
UPPER, LOWER = f"[{UPPER_CHARS}]", f"[{_class_members(str.islower)}{_MARKS}]"
_IN_WORD = re.compile(f"[{LETTERS}0-9]")  # what continues a name word: a span never stops inside one

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
# an abbreviation may carry a dot; a full month name's dot ends the sentence and is kept
MONTH = r"(?:(?:january|february|march|april|may|june|july|august|september|october|november|december)"
MONTH += r"|(?:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?)"
DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
YEAR = r"(?:1[89]\d\d|20\d\d|'\d\d)"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_ORDINAL_UNITS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
DAY_WORD = (
    rf"(?:(?:twenty|thirty)[- ]?(?:{_ORDINAL_UNITS})|{_ORDINAL_UNITS}|tenth|eleventh|twelfth|thirteenth"
    r"|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_SEP = r"[ \t]*[,.]?[ \t]*"
_NUM_M = r"(?:0?[1-9]|1[0-2])"
_NUM_D = r"(?:0?[1-9]|[12]\d|3[01])"

STREET_SUFFIXES = {
    "street": ("street", "st", "str"),
    "avenue": ("avenue", "ave", "av"),
    "road": ("road", "rd"),
    "boulevard": ("boulevard", "blvd"),
    "lane": ("lane", "ln"),
    "drive": ("drive", "dr"),
    "court": ("court", "ct"),
    "place": ("place", "pl"),
    "terrace": ("terrace", "ter", "terr"),
    "circle": ("circle", "cir"),
    "parkway": ("parkway", "pkwy"),
    "highway": ("highway", "hwy"),
    "square": ("square", "sq"),
    "way": ("way",),
    "landing": ("landing", "lndg"),
    "trail": ("trail", "trl"),
    "crossing": ("crossing", "xing"),
    "heights": ("heights", "hts"),
    "point": ("point", "pt"),
    "row": ("row",),
    "path": ("path",),
    "run": ("run",),
    "loop": ("loop",),
}
DIRECTIONS = {"north": ("north", "n"), "south": ("south", "s"), "east": ("east", "e"), "west": ("west", "w")}
_UNIT_NAMES = ("apartment", "apt", "unit", "suite", "ste", "room", "rm")
UNIT_WORDS = rf"(?:{'|'.join(_UNIT_NAMES)}|#)"
STATES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho"
    "|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota"
    "|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York"
    "|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina"
    "|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)


def _suffixes(words) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


# "Pt" in a note is the patient far more often than a Point
_ABBREVIATIONS = {v for vs in STREET_SUFFIXES.values() for v in vs} - set(STREET_SUFFIXES) - {"pt"}
# an address's suffix is written in title case ('Elm Street', '12 Elm St'); an abbreviation followed by
# a lower-case word is a note's words ('2 Ortho Ct reviewed', '2 Tablets Dr ordered'); all caps
# ('ST', 'CT', 'DR') is a test or an abbreviation unless the whole line is caps or a '.', a city or a
# ZIP follows ('3 Anterior ST depression' stays)
_CITY_OR_ZIP = rf"(?:\.|,[ \t]*{UPPER}{LOWER}+|,?[ \t]+\d{{5}}(?![\w-]))"
# ... but a street line is followed in prose by these words ('12 Elm St with his wife', '7 Maple Ave
# and ...'), which follow no clinical abbreviation after a number, Ct and Dr aside (below)
_PROSE_AFTER_STREET = r"(?:with|and|since|in|where|alone|until|together|near|nearby|who|which)\b"
# Ct and Dr are also a CT and doctors ('3 Chest Ct with no acute findings', '3 Renal Dr with plan'):
# after them only 'with' or 'and' and a person ('12 Elm Ct with his wife'); Ct before 'with contrast',
# 'and', 'or', 'for' stays a CT (_NOT_A_CT)
_PERSON_AFTER_CT_DR = (
    r"(?:with|and)[ \t]+(?:(?:his|her|their|my|our)[ \t]+)?(?:wife|husband|spouse|partner|son|daughter"
    r"|child|children|kids|mother|father|parents|brother|sister|family|friend|roommate|girlfriend|boyfriend)s?\b"
)
_SUFFIX = (
    rf"(?:(?:{_suffixes(w.title() for w in STREET_SUFFIXES)})\b"
    rf"|(?:{_suffixes(w.title() for w in _ABBREVIATIONS - {'ct', 'dr'})})\b(?![ \t]+(?!{_PROSE_AFTER_STREET}){LOWER})"
    rf"|(?:Ct|Dr)\b(?![ \t]+(?!{_PERSON_AFTER_CT_DR}){LOWER})"
    rf"|(?:{_suffixes(w.upper() for w in _ABBREVIATIONS | set(STREET_SUFFIXES))})\b(?={_CITY_OR_ZIP}))"
)
# A number before a count or dose noun is a quantity, not a house number ('2 Tablets Dr advised', '3
# Occasions Dr Patel'); a lone direction is a hospital ward ('4 North', '5 West'), which before Dr or Ct
# (a doctor, a CT) is a street only if a city or ZIP follows; Ct before an imaging word is a CT.
_COUNT_NOUNS = (
    "tablet|tab|capsule|cap|pill|puff|drop|dose|unit|time|occasion|episode|day|week|month|year|hour|hr"
    "|minute|min|visit|attempt|cycle|session|round|spray|patch|injection|shot|vial|pack|cigarette|drink"
    "|beer|glass|cup|serving|view|set|rep|stitch|suture|stent|lesion|nodule|fall"
)
_WARD = rf"(?i:north|south|east|west)[ \t]+(?i:dr|ct)\b\.?(?!,[ \t]*{UPPER}{LOWER}+|,?[ \t]+\d{{5}}(?![\w-]))"
_HOUSE_NUMBER_OF = rf"(?!(?i:(?:{_COUNT_NOUNS})(?:e?s)?)\b|{_WARD})"
# what a CT is of: after "Ct" (_IMAGING) or before it (_SCANNED)
_BODY_PARTS = r"head|chest|abd|abdomen|pelvis|spine|neck|brain|sinus"
_IMAGING = rf"scans?|scanned|angio\w*|{_BODY_PARTS}|contrast|guided"
_CT_AFTER = r"imaging|findings|report|results?|ordered|pending|and|or|for|w/o?|with(?:out)?[ \t]+(?:iv[ \t]+|oral[ \t]+)?contrast"
_NOT_A_CT = rf"(?:(?<![Cc][Tt])|(?![ \t]+(?i:{_IMAGING}|{_CT_AFTER})(?!\w)))"
# ... nor after what is scanned ('1 Head Ct in am', '3 Chest CT.'): a street name word is none of these
_SCANNED = (
    rf"{_BODY_PARTS}|abdominal|pelvic|spinal|facial|orbits?|temporal"
    r"|lumbar|thoracic|cervical|cardiac|coronary|renal|lung|liver|body|bone|extremity|repeat|stat|spiral"
)
_STREET_WORD = rf"(?!(?i:{_SCANNED})[ \t]+(?i:ct)\b){UPPER}{LOWER}+[ \t]+"
_CAPS_STREET_WORD = rf"(?!(?i:{_SCANNED})[ \t]+CT\b){UPPER}{{2,}}[ \t]+"
_CAPS_STREET = rf"(?:{_CAPS_STREET_WORD}){{1,3}}(?:{_suffixes(w.upper() for w in _ABBREVIATIONS | set(STREET_SUFFIXES))})\b"
_CAP = rf"{UPPER}[{LETTERS}'\u2019-]+"  # a capitalized word (O'Brien, McAllister, Smith-Jones, Müller)
_NAME2 = rf"{_CAP}(?:[ \t]+{UPPER}\.)?(?:[ \t]+{_CAP})?"  # one or two words, optional middle initial
_INITIAL_NAME = rf"(?:{UPPER}\.[ \t]*)?{_NAME2}"
CREDENTIALS = r"(?:MD|M\.D\.|DO|D\.O\.|RN|NP|APRN|PA-C|PA|CNM|LICSW|MSW|PhD|DDS|DMD|PharmD|DPT|FNP|OD)"
ROLES = (
    r"(?:husband|wife|spouse|partner|son|daughter|son-in-law|daughter-in-law|mother|father|brother|sister"
    r"|grandson|granddaughter|niece|nephew|aunt|uncle|friend|neighbou?r|caregiver|guardian|proxy|HCP"
    r"|POA|attorney|emergency contact|contact|family|next of kin)"
)
ACTS = (
    r"(?:signed by|seen by|read by|referred by|consult(?:ed)? by|performed by|dictated by|delivered by"
    r"|pronounced by|per|attending|pcp|provider|surgeon|physician|resident|nurse|cosigned by|reviewed by)"
)
FACILITY_WORDS = (
    r"(?:Hospital|Medical Center|Health Center|Healthcare|Health System|Clinic|Nursing Home|Rehabilitation"
    r" Center|Rehab Center|Home Care|Pharmacy|Associates|Urgent Care|Hospice|Medical Group|Infirmary"
    r"|Care Center|Nursing Center|Surgical Center|Physicians|Family Practice)"
)
# Numbers after these are not days of a month: a score, a ratio, a dose.
_NOT_DATE_BEFORE = re.compile(
    r"(?i)(?:pain|apgar|mmse|moca|score|scale|grade|strength|gcs|iop|va|ratio|fraction|x|of|dose|tab(?:let)?s?)"
    r"[:\s]*$"
)


@dataclass(frozen=True)
class Recognizer:
    """One identifier kind: a pattern compiled once; group 'v', when present, is the identifier."""

    kind: str
    pattern: re.Pattern[str]
    label: str = REDACTED
    # lower-case strings of which the text must hold one for the pattern to match: a substring test
    # is far cheaper than letting the regex engine try the pattern at every position of the note
    needs: tuple[str, ...] = ()

    def spans(self, text: str, lower: str | None = None) -> Iterable[tuple[int, int, str]]:
        if self.needs and not any(n in (lower if lower is not None else text.lower()) for n in self.needs):
            return
        for match in self.pattern.finditer(text):
            group = "v" if "v" in self.pattern.groupindex and match.group("v") is not None else 0
            start, end = match.span(group)
            if self.kind == "date_short" and _NOT_DATE_BEFORE.search(text[max(0, start - 12) : start]):
                continue
            if self.label == NAME:  # a name is redacted whole: never '[NAME]ée' of 'Renée'
                while end < len(text) and _IN_WORD.match(text, end):
                    end += 1
            if end > start:
                yield start, end, self.label


def _rec(
    kind: str, pattern: str, label: str = REDACTED, flags: int = re.IGNORECASE, needs: tuple[str, ...] = ()
) -> Recognizer:
    return Recognizer(kind, re.compile(pattern, flags), label, needs)


_MONTH_NEEDS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


_GENERIC_TLDS = "com|org|net|edu|gov|mil|info|biz|io|health|care"
_COUNTRY_TLDS = "us|uk|ca|au|nz|ie|de|fr|nl|in"
# a run of three or more 24-hour times ('0015 0615 1215 1815': medication times, not '00' + a country)
_TIMES = r"(?:(?:[01]\d|2[0-3])[0-5]\d[ \t]+){2,}(?:[01]\d|2[0-3])[0-5]\d(?![\w-])"
_B = r"(?<![\w/.-])"  # no word, slash, dot or hyphen right before: not inside a longer token
_E = r"(?![\w/-]|\.\d)"

_UNIT_TITLE_OR_CAPS = "|".join(f"{w.title()}|{w.upper()}" for w in _UNIT_NAMES)
# a house number (not a count, not a ward) and the street's direction
_NUMBER_AND_DIRECTION = (
    rf"\d{{1,6}}[A-Za-z]?[ \t]+{_HOUSE_NUMBER_OF}(?:(?i:north|south|east|west)[ \t]+|[NSEW]\.?[ \t]+)?"
)
# a street line: number, direction, one to three capitalized words and a suffix, a unit after it
_ADDRESS = (
    rf"\b{_NUMBER_AND_DIRECTION}"
    rf"(?:(?:{_STREET_WORD}){{1,3}}{_SUFFIX}|{_CAPS_STREET}){_NOT_A_CT}\.?(?:[ \t]+(?:[NS][EW]|[NSEW])\b\.?)?"
    rf"(?:,?[ \t]*(?i:{UNIT_WORDS})\.?[ \t]*#?[ \t]*[A-Za-z0-9-]+"
    # the unit may be on the next line ('12 Elm St\nApt 4B'), if it holds a number ('Room air' is none)
    rf"|[ \t]*\n[ \t]*(?i:{UNIT_WORDS})\.?[ \t]*#?[ \t]*(?=[A-Za-z-]*\d)[A-Za-z0-9-]+)?"
)

RECOGNIZERS: tuple[Recognizer, ...] = (
    _rec("date_numeric", rf"{_B}{_NUM_M}[/-]{_NUM_D}[/-](?:\d{{4}}|\d{{2}}){_E}"),
    _rec("date_dotted", rf"{_B}{_NUM_D}\.{_NUM_M}\.(?:\d{{4}}|\d{{2}}){_E}"),
    _rec("date_iso", rf"{_B}(?:1[89]|20)\d\d[-/.]{_NUM_M}[-/.]{_NUM_D}(?:[T ]\d\d:\d\d(?::\d\d)?)?{_E}"),
    _rec("date_month_year", rf"{_B}{_NUM_M}/(?:1[89]|20)\d\d{_E}"),
    _rec("date_short", rf"{_B}{_NUM_M}/{_NUM_D}{_E}"),
    _rec("date_compact", rf"{_B}{_NUM_D}-(?:{_MONTHS})-(?:\d{{4}}|\d{{2}}){_E}", needs=_MONTH_NEEDS),
    # month name first: 'Aug 30, 1948', 'March 2019', 'February the fourteenth' (one scan for the three)
    _rec(
        "date_month_first",
        rf"\b{MONTH}(?:[ \t]+(?:the[ \t]+)?{DAY_WORD}\b(?:{_SEP}{YEAR}\b)?|{_SEP}(?:the[ \t]+)?{DAY}\b(?:{_SEP}{YEAR}\b)?|{_SEP}{YEAR}\b)",
        needs=_MONTH_NEEDS,
    ),
    _rec(
        "date_day_month", rf"\b{DAY}(?:[ \t]+of)?[ \t]*-?[ \t]*{MONTH}(?:{_SEP}{YEAR}\b)?", needs=_MONTH_NEEDS
    ),
    _rec(
        "date_words",
        rf"\b(?:the[ \t]+)?{DAY_WORD}[ \t]+of[ \t]+{MONTH}(?:{_SEP}{YEAR}\b)?",
        needs=tuple(f"th of {m}" for m in _MONTH_NEEDS)
        + tuple(f"st of {m}" for m in _MONTH_NEEDS)
        + tuple(f"nd of {m}" for m in _MONTH_NEEDS)
        + tuple(f"rd of {m}" for m in _MONTH_NEEDS),
    ),
    # a month name alone is a date element; 'May' and lower-case 'march' are too often words
    _rec(
        "month",
        r"\b(?:January|February|March|April|June|July|August|September|October|November|December)\b",
        flags=0,
    ),
    _rec(
        "phone",
        r"(?<![\w-])(?:\+?1[ \t.-]*)?(?:\(\d{3}\)|\d{3})[ \t.-]*\d{3}[ \t.-]*\d{4}(?![\w-])"
        r"(?:[ \t]*(?:ext\.?|x)[ \t]*\d{1,5})?",
    ),
    # international: '+44 20 7946 0958', '+44 (0)20 ...', '0044 ...', '+33 1 42 68 53 00', '+442079460958';
    # eight digits at least, so '+2 edema' and '+1 2 pulses' stay; the country code and each group end
    # at a separator, so '+1250 800 450 ml' (a fluid balance) is none and a digit run is split one way
    # only (possessive: no backtracking); a dot only before two digits or more, so the decimals of
    # '+1.2 1.5 1.8 2.0' are no group; after '00', not a run of 24-hour times ('0015 0615 1215 1815')
    _rec(
        "phone_intl",
        rf"(?<![\w+])(?:\+|(?!{_TIMES})00)(?:[1-9]\d{{7,14}}+(?![\w-])|(?=(?:[ \t.()-]*\d){{8}})[1-9]\d{{0,2}}+"
        r"(?:[ \t-]*+\(0\))?(?:(?:[ \t-]++|(?<=\)))\(?\d{1,10}+\)?|\.\d{2,5}+){2,7}+(?![\w-]))",
        needs=("+", "00"),
    ),
    # after a phone word, a local or foreign number in groups of two or more digits: 'tel. 555 1234',
    # 'mobile: 07700 900123' (pH values are single digits before the dot: never seven in such groups);
    # groups of two digits only if the first has a trunk 0 ('tel 01 42 68 53 00', not 'cell 45 60 70 80')
    _rec(
        "phone_labelled",
        r"\b(?:tel|telephone|phone|cell|mobile|mob|fax|pager|beeper|call)\b\.?[ \t]*(?:no\.?|number|#)?[ \t]*:?"
        r"[ \t]*(?P<v>(?=(?:[ \t.()-]*\d){7})(?![1-9]\d(?:[ \t.-]+\d\d)+(?![\w-]|[ \t.-]+\d))"
        r"\(?\d{2,6}\)?(?:[ \t.-]+\(?\d{2,6}\)?){1,4})(?![\w-])",
        needs=("tel", "phone", "cell", "mob", "fax", "pager", "beeper", "call"),
    ),
    _rec("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", needs=("@",)),
    _rec("url", r"\b(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:)\]]", needs=("http", "www.")),
    # no scheme: a host ending in a generic top-level domain, or in a country one followed by a path
    # ('portal.example.org/patient/8823', 'ehr.nhs.uk/p/77'; 'ca.' or 'us.' alone are words); the domain
    # in lower case or capitals, as written: 'seen.Care plan' is two sentences with no space between
    _rec(
        "url_bare",
        rf"(?<![\w@./-])(?:[A-Za-z0-9-]+\.)+(?:{_GENERIC_TLDS}|{_GENERIC_TLDS.upper()}"
        rf"|(?:{_COUNTRY_TLDS}|{_COUNTRY_TLDS.upper()})(?=/))\b"
        r"(?::\d+)?(?:/[^\s<>\"]*[^\s<>\".,;:)\]])?(?![\w@-])",
        flags=0,
        needs=tuple(f".{t}" for t in (*_GENERIC_TLDS.split("|"), *_COUNTRY_TLDS.split("|"))),
    ),
    _rec("ip", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]\d)"),
    _rec("ssn", r"(?<![\w-])\d{3}[ -]?\d{2}[ -]?\d{4}(?![\w-])"),
    # wide spaces, tabs or a spaced hyphen only after the label: a lab row's columns are spaced so too
    _rec(
        "ssn_labelled",
        r"\b(?:SSN|SS#|social[ \t]+security(?:[ \t]+(?:number|no\.?|#))?)[ \t]*[:#]?[ \t]*"
        r"(?P<v>\d{3}[ \t]*-?[ \t]*\d{2}[ \t]*-?[ \t]*\d{4})(?![\w-])",
        needs=("ssn", "ss#", "social"),
    ),
    _rec(
        "labelled_id",
        r"\b(?:MRN|MR|medical record|med(?:ical)?[ \t]+rec|record|acct|account|member|medicare|medicaid|policy|claim|licen[cs]e|DL"
        r"|passport|patient|subscriber|certificate|serial|device|plate|NPI|SSN|ID)"
        r"(?:[ \t]+(?:id|number|no\.?|num|#))?[ \t]*[:#.]{0,2}[ \t]*#?[ \t]*"
        r"(?P<v>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,})",
    ),
    _rec(
        "long_number",
        r"(?<![\w.-])(?!(?:a?nda|ndc)\d)(?=(?:[A-Za-z-]*\d){5})[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9](?![\w-]|\.\d)",
    ),
    _rec(
        "zip",
        rf"\b(?:[A-Z]{{2}}|{STATES}|(?i:zip)(?:[ \t]*code)?:?),?[ \t]+(?P<v>\d{{5}}(?:-\d{{4}})?)\b",
        flags=0,
    ),
    _rec(
        "age",
        r"\b(?:age[d:]?[ \t]*)?(?P<v>9\d|1[01]\d)"
        r"(?=[ \t-]*(?:years?|yrs?|y/?o|y\.o\.|yo|year-old|female|male|woman|man|gentleman|lady)(?!\w))",
    ),
    _rec("age_label", r"\bage[d:]?[ \t]*(?P<v>9\d|1[01]\d)\b"),
    _rec(
        "age_words",
        rf"\b(?P<v>(?:ninety|one hundred(?:[ \t]+and)?)(?:[- \t]?(?:{_UNITS}))?)(?=[ \t-]*(?:years?|yrs?|y/?o))",
    ),
    _rec("address", _ADDRESS, flags=0),
    # the unit written before its street ('Apt 4B, 12 Elm St'), if it holds a number; in title case or
    # capitals, as the street after it is
    _rec(
        "address_unit_first",
        rf"\b(?:{_UNIT_TITLE_OR_CAPS})\.?[ \t]*#?[ \t]*(?=[A-Za-z-]*\d)[A-Za-z0-9-]+,?[ \t]+{_ADDRESS}",
        flags=0,
        needs=("apt", "apartment", "unit", "suite", "ste ", "ste.", "room", "rm ", "rm."),
    ),
    # after a word that places it ('lives at 12 Elm St with her son', 'moved to 4 Oak Ct last year') an
    # abbreviated suffix is a street whatever follows; without one, 'day 2 Ortho Ct reviewed' stays
    _rec(
        "address_placed",
        rf"\b(?i:at|on|to|from|near|address[ \t]*:?)[ \t]+(?P<v>{_NUMBER_AND_DIRECTION}(?:{_STREET_WORD}){{1,3}}"
        rf"(?:{_suffixes(w.title() for w in _ABBREVIATIONS)})\b{_NOT_A_CT}\.?)",
        flags=0,
    ),
    _rec(
        "po_box", r"\b(?:P\.?[ \t]*O\.?[ \t]*Box|Post[ \t]+Office[ \t]+Box)[ \t]*#?[ \t]*\d+", needs=("box",)
    ),
    _rec(
        "city",
        rf"\b(?P<v>{UPPER}{LOWER}+(?:[ \t]+{UPPER}{LOWER}+)?),?[ \t]+(?:[A-Z]{{2}}|{STATES})[ \t]+\d{{5}}(?:-\d{{4}})?(?![\w-])",
        flags=0,
    ),
    _rec(
        "titled_name", rf"\b(?:Dr|DR|Mr|Mrs|MRS|Ms|Miss|Mx|Prof|Sr|Fr|Rev)\.?[ \t]+(?P<v>{_NAME2})", NAME, 0
    ),
    _rec("credentialed_name", rf"(?P<v>{_INITIAL_NAME}),?[ \t]+{CREDENTIALS}\b", NAME, 0),
    # a name after a role or an act: 'daughter Rosa', 'proxy (Siobhan O'Brien)', 'signed by Dr. A. Smith'
    _rec(
        "role_name",
        rf"(?i:\b(?:{ROLES}|{ACTS}))[ \t]*[:,]?[ \t]*\(?[ \t]*(?:(?i:\b{ROLES})[ \t]+)?(?:(?i:Dr)\.?[ \t]+)?"
        # 'SMITH, JANE': the ', FIRST' only after a name in caps ('son John, HTN ...' is no name)
        rf"(?P<v>{UPPER}[{UPPER_CHARS}'\u2019-]+,[ \t]*(?!{CREDENTIALS}\b){UPPER}[{UPPER_CHARS}'\u2019-]+(?:[ \t]+{UPPER}\b\.?)?"
        rf"|{_INITIAL_NAME})",
        NAME,
        0,
    ),
    # 'Name: LAST, FIRST', 'Electronically Signed: SMITH, JANE Q MD'
    _rec(
        "labelled_name",
        rf"\b(?i:name|patient|pt|electronically[ \t]+signed(?:[ \t]+by)?|signed[ \t]+by)[ \t]*:[ \t]*(?P<v>{_CAP}(?:,? (?!{CREDENTIALS}\b)(?:{_CAP}|{UPPER}\.?(?!\w))){{0,2}})",
        NAME,
        0,
    ),
    _rec("maiden_name", rf"\b(?i:n[ée]e|maiden(?:[ \t]+name)?)[ \t]*:?[ \t]+(?P<v>{_CAP})", NAME, 0),
    _rec("synthea_name", rf"\b{UPPER}{LOWER}+\d+\b", NAME, 0),
    _rec(
        "facility",
        rf"(?P<v>(?:(?:St\.|Saint|{UPPER}[\w'\u2019&-]*)[ \t]+){{1,4}}{FACILITY_WORDS})\b",
        flags=0,
    ),
)
