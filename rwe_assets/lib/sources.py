"""The source registry (rwe_assets/sources.yaml) as typed, validated objects.

Users add sources without touching the package: a registry file of their own (<data>/sources.yaml, or
the file RWE_SOURCES_FILE names; rwe_assets/settings.py) is read after the bundled one and adds its
sources to it. An entry may say `like: <bundled source>` to start from that source's declaration
(kind, format, extract, entities, staging profile) and change only what it names, so a third EHR site
sending Synthea CSV is three lines, not a copy of eighteen entities. Redefining a bundled source is
refused: the bundled names are what the code and the docs refer to.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.settings import SOURCES_FILE_NAME

REGISTRY_PATH = (
    Path(__file__).resolve().parent.parent / SOURCES_FILE_NAME
)  # the bundled sources; a user's beside the data
LIKE = "like"  # a user registry entry's key naming the bundled source it starts from
KINDS = ("ehr", "claims", "genomics")
FORMATS = ("csv", "ndjson")
# What one batch of a source says about the records it holds (docs/concepts.md, "Record lifecycle"):
# snapshot: a batch is the complete current record of every person it contains, so a record of such a
#   person that the batch leaves out is retired; persons absent from the batch are untouched.
# incremental: a batch adds or replaces records; only an explicit marker (FHIR 'entered-in-error', a
#   void claim) retires one.
EXTRACTS = ("snapshot", "incremental")
# NDJSON lines whose resourceType the source does not list land here, so nothing is dropped.
OTHER_RESOURCE = "other_resource"
# Files that are never data, in any source: recorded in the manifest as ignored and never read, so a
# LICENSE or README landed with an export does not fail its batch. A source adds its own with
# `ignore_files` (sources.yaml). Matched case-insensitively against the file name (not its folder).
# Deliberately narrow: a file that merely looks unusual (notes.txt, visits.csv) still fails as matching
# no entity, so a data file the registry does not declare is never skipped in silence.
DEFAULT_NON_DATA_FILES = (
    "LICENSE", "LICENSE.*", "LICENCE", "LICENCE.*", "COPYING", "COPYING.*", "NOTICE", "NOTICE.*",
    "README", "README.*", "CHANGELOG", "CHANGELOG.*", "*.md", "*.pdf",
    ".DS_Store", "Thumbs.db", "desktop.ini",
    # a FHIR bulk export's log of the export itself (OperationOutcome-like events, not patient data)
    "log.ndjson", "log.ndjson.gz", "*.log.ndjson", "*.log.ndjson.gz",
)  # fmt: skip
# FHIR sources take bulk NDJSON (one resource per line) and JSON documents: one Bundle or one resource
# per file (raw_ingest/fhir_json.py).
NDJSON_FILES = ("*.ndjson", "*.ndjson.gz")
FHIR_JSON_FILES = ("*.json", "*.json.gz")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Kinds of person identifier a source may declare (docs/data-formats.md, "Identifiers"). Documents
# (national id, driver's licence, passport) are issued to the person: two different numbers of one issuer
# are evidence of two people. Record numbers (MRN, payer member id) are assigned by whoever holds the
# record: a person registered twice has two, so they only ever count when they agree, and their system
# (the assigning authority) defaults to the declaring source's site.
DOCUMENT_TYPES = ("national_id", "drivers_license", "passport")
RECORD_NUMBER_TYPES = ("mrn", "member_id")
IDENTIFIER_TYPES = DOCUMENT_TYPES + RECORD_NUMBER_TYPES
# The DuckDB variable the person staging SQL reads (set_identifier_variables): the source's fields as
# JSON; unset, a profile stages only what its format states itself (FHIR Patient.identifier).
IDENTIFIER_FIELDS_VARIABLE = "rwe_identifier_fields"


@dataclass(frozen=True)
class EntitySpec:
    name: str
    files: tuple[str, ...]
    required_columns: tuple[str, ...] = ()

    def matches(self, file_name: str) -> bool:
        lowered = file_name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in self.files)


@dataclass(frozen=True)
class IdentifierField:
    """One identifier a source's person records carry. CSV: `field` is a column; FHIR: `field` is a
    top-level element of the Patient (`id`), or `system` alone maps Patient.identifier entries of that
    system to `type` (for feeds that send no type code). The issuer or assigning authority is `system`,
    or the value of `system_field` on each row (the lab manifest's ORDERING_SITE)."""

    type: str
    field: str | None = None
    system: str | None = None
    system_field: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    format: str
    extract: str  # one of EXTRACTS
    owner: str
    site: str
    entities: tuple[EntitySpec, ...]
    ignore_files: tuple[str, ...] = ()
    encoding: str = "utf-8"
    # Which SQL family under lib/sql/staging/ turns this source's raw tables into canonical staging
    # tables (synthea_csv, fhir_r4, ...); None: the source is kept in raw but not staged yet.
    staging_profile: str | None = None
    # Rank of this source's demographics when linked records of one person disagree and their own
    # record dates tie (lib/sql/cdm/person.sql): 1 is trusted first; None ranks after every number.
    person_priority: int | None = None
    # Person identifier fields (sources.yaml `identifiers`), staged typed in staging.person_pii.
    identifiers: tuple[IdentifierField, ...] = ()
    # The source keeps one record per person (a registry, a deduplicated master file): linkage never
    # joins two of its records into one person (lib/linkage/cluster.py, split_conflicts).
    deduplicated: bool = False

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(entity.name for entity in self.entities)

    def entity(self, name: str) -> EntitySpec:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(f"source {self.name} has no entity {name!r}; it has {', '.join(self.entity_names)}")

    def is_ignored(self, file_name: str) -> bool:
        """Not data: matches DEFAULT_NON_DATA_FILES or this source's ignore_files."""
        lowered = file_name.lower()
        patterns = DEFAULT_NON_DATA_FILES + self.ignore_files
        return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)

    def accepts(self, file_name: str) -> bool:
        return any(entity.matches(file_name) for entity in self.entities)

    def file_patterns(self) -> str:
        return "; ".join(f"{e.name}: {' '.join(e.files)}" for e in self.entities if e.files)

    def entity_for_file(self, file_name: str) -> EntitySpec | None:
        """The CSV entity whose patterns match this file name, or None."""
        matches = [entity for entity in self.entities if entity.matches(file_name)]
        if len(matches) > 1:
            names = ", ".join(entity.name for entity in matches)
            raise ConfigError(f"source {self.name}: file {file_name} matches several entities ({names})")
        return matches[0] if matches else None


@dataclass(frozen=True)
class SourceRegistry:
    sources: tuple[SourceSpec, ...]

    def __iter__(self):
        return iter(self.sources)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self.sources)

    def get(self, name: str) -> SourceSpec:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"unknown source {name!r}; the registry declares {', '.join(self.names)}")


def parse_registry(document: dict, origin: str = "registry") -> SourceRegistry:
    """Validate a registry document (the parsed YAML) and build the typed registry."""
    raw_sources = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{origin}: expected a non-empty list under 'sources'")
    sources = tuple(_parse_source(raw, origin) for raw in raw_sources)
    names = [source.name for source in sources]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"{origin}: source names must be unique, found {', '.join(duplicated)} twice")
    return SourceRegistry(sources)


def load_registry(path: Path | None = None, user_path: Path | None = None) -> SourceRegistry:
    """The project's registry: the bundled file plus the user's (settings.user_sources_file) when it
    exists. With `path`, that one file alone (tests, benchmarks)."""
    if path is not None:
        return _load_file(Path(path))
    if user_path is None:
        from rwe_assets.settings import Settings

        user_path = Settings.from_env().user_sources_file
    user_path = Path(user_path)
    stamp = (user_path.stat().st_mtime_ns, user_path.stat().st_size) if user_path.is_file() else None
    return _load_merged(user_path, stamp)


@cache
def _load_file(path: Path) -> SourceRegistry:
    return parse_registry(_read_yaml(path), origin=str(path))


@cache
def _load_merged(user_path: Path, stamp: tuple[int, int] | None) -> SourceRegistry:
    """Bundled + user registry; `stamp` (mtime, size) keys the cache, so an edited file is re-read."""
    if stamp is None:
        return _load_file(REGISTRY_PATH)
    bundled = _read_yaml(REGISTRY_PATH)
    user = _read_yaml(user_path)
    if not isinstance(user, dict) or not isinstance(user.get("sources"), list):
        raise ConfigError(f"{user_path}: expected a list under 'sources'")
    by_name = {raw["name"]: raw for raw in bundled["sources"]}
    added = [_resolve_like(raw, by_name, user_path) for raw in user["sources"]]
    return parse_registry({"sources": bundled["sources"] + added}, origin=f"{REGISTRY_PATH} + {user_path}")


def _resolve_like(raw: dict, bundled: dict[str, dict], user_path: Path) -> dict:
    name = raw.get("name") if isinstance(raw, dict) else None
    if name in bundled:
        raise ConfigError(
            f"{user_path}: source {name} is already declared by the bundled registry; choose another name"
        )
    if not isinstance(raw, dict) or LIKE not in raw:
        return raw
    base = bundled.get(raw[LIKE])
    if base is None:
        raise ConfigError(
            f"{user_path}: source {name}: like {raw[LIKE]!r} names no bundled source ({', '.join(bundled)})"
        )
    return {**base, "site": name, **{key: value for key, value in raw.items() if key != LIKE}}


def _read_yaml(path: Path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def unknown_landing_folders(landing_dir: Path, registry: SourceRegistry) -> list[str]:
    """Names directly under the landing zone that no source declares (a mistyped source folder, a file
    dropped one level too high), so every command can say so instead of ignoring them. Names starting
    with '.' or '_' are markers and temporary folders, as for batches (lib/landing.py)."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    known = set(registry.names)
    return sorted(
        entry.name
        for entry in landing_dir.iterdir()
        if entry.name not in known and not entry.name.startswith((".", "_"))
    )


def _parse_source(raw: dict, origin: str) -> SourceSpec:
    name = _required(raw, "name", origin)
    where = f"{origin}: source {name}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: expected a lower-case name of letters, digits and _, found {name!r}")
    kind, fmt = _required(raw, "kind", where), _required(raw, "format", where)
    extract = _required(raw, "extract", where)
    if kind not in KINDS:
        raise ConfigError(f"{where}: expected kind one of {', '.join(KINDS)}, found {kind!r}")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: expected format one of {', '.join(FORMATS)}, found {fmt!r}")
    if extract not in EXTRACTS:
        raise ConfigError(f"{where}: expected extract one of {', '.join(EXTRACTS)}, found {extract!r}")
    entities = tuple(_parse_entity(entity, fmt, where) for entity in raw.get("entities") or [])
    if not entities:
        raise ConfigError(f"{where}: expected at least one entity")
    if fmt == "ndjson" and OTHER_RESOURCE not in {entity.name for entity in entities}:
        entities += (EntitySpec(OTHER_RESOURCE, files=()),)
    return SourceSpec(
        name=name,
        kind=kind,
        format=fmt,
        extract=extract,
        owner=str(raw.get("owner", "")),
        site=str(raw.get("site", name)),
        entities=entities,
        ignore_files=tuple(raw.get("ignore_files") or ()),
        encoding=str(raw.get("encoding", "utf-8")),
        staging_profile=raw.get("staging_profile"),
        person_priority=_person_priority(raw, where),
        identifiers=_identifiers(raw, fmt, where),
        deduplicated=_deduplicated(raw, where),
    )


def _identifiers(raw: dict, fmt: str, where: str) -> tuple[IdentifierField, ...]:
    entries = raw.get("identifiers") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a list under 'identifiers'")
    fields = []
    for entry in entries:
        entry = entry if isinstance(entry, dict) else {}
        unknown = set(entry) - {"type", "field", "system", "system_field"}
        if entry.get("type") not in IDENTIFIER_TYPES or unknown:
            raise ConfigError(
                f"{where}: expected identifiers entries with a type ({', '.join(IDENTIFIER_TYPES)}) and "
                f"field, system or system_field, found {sorted(entry) or entry!r}"
            )
        item = IdentifierField(**{k: str(v) for k, v in entry.items()})
        if item.field is None and (fmt != "ndjson" or item.system is None or item.system_field):
            raise ConfigError(
                f"{where}: identifier of type {item.type}: expected a field (a CSV column or FHIR element); "
                "an entry without one maps a FHIR identifier system (system only)"
            )
        fields.append(item)
    return tuple(fields)


def identifier_variables(source: SourceSpec) -> dict[str, str]:
    """Values of the DuckDB variables the person staging SQL reads for `source` (IDENTIFIER_FIELDS_VARIABLE:
    JSON list of {type, system, path, system_path, match_system}, paths as JSON paths into the raw row or
    FHIR resource). A record number without a system gets the source's site as its assigning authority."""
    entries = []
    for item in source.identifiers:
        system = item.system
        if system is None and item.system_field is None and item.type in RECORD_NUMBER_TYPES:
            system = source.site
        entries.append(
            {
                "type": item.type,
                "system": system if item.field is not None else None,
                "path": _json_path(item.field),
                "system_path": _json_path(item.system_field),
                "match_system": item.system if item.field is None else None,
            }
        )
    return {IDENTIFIER_FIELDS_VARIABLE: json.dumps(entries)}


def set_identifier_variables(con, source: SourceSpec) -> None:
    """Set the variables of identifier_variables(source) on DuckDB connection `con`, before the source's
    person staging SQL runs (set for every source, so one source's fields never reach another)."""
    for name, value in identifier_variables(source).items():
        con.execute(f"SET VARIABLE {name} = ?", [value])


def _json_path(name: str | None) -> str | None:
    return None if name is None else '$."' + name.replace('"', "") + '"'


def _person_priority(raw: dict, where: str) -> int | None:
    value = raw.get("person_priority")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{where}: expected person_priority a whole number >= 1, found {value!r}")
    return value


def _deduplicated(raw: dict, where: str) -> bool:
    value = raw.get("deduplicated", False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected deduplicated true or false, found {value!r}")
    return value


def _parse_entity(raw: dict, fmt: str, where: str) -> EntitySpec:
    name = _required(raw, "name", where)
    if not _NAME.match(name):
        raise ConfigError(f"{where}: entity names are lower-case letters, digits and _, found {name!r}")
    if fmt == "ndjson":
        files = NDJSON_FILES + FHIR_JSON_FILES
    else:
        files = tuple(raw.get("files") or (f"{name}.csv", f"{name}.csv.gz"))
    return EntitySpec(name=name, files=files, required_columns=tuple(raw.get("required_columns") or ()))


def _required(raw: dict, key: str, where: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty '{key}'")
    return value
