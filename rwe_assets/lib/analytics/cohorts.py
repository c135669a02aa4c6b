"""Cohorts: ATLAS cohort definitions (the Circe JSON format) and a small YAML form, compiled to one
DuckDB query over the CDM and written to cdm.cohort / cdm.cohort_definition.

The compiler covers a subset of Circe and refuses everything else by name
(`UnsupportedCohortConstruct`), so a definition never runs with a part of it silently ignored:

- concept sets: included concepts, `includeDescendants` (cdm.concept_ancestor), `isExcluded`,
  `includeMapped` (source concepts whose "Maps to" reaches the set);
- primary criteria ConditionOccurrence, DrugExposure, ProcedureOccurrence, Measurement (ValueAsNumber
  ranges, Unit, ValueAsConcept), Observation (ValueAsString), VisitOccurrence, Specimen, each with
  `First` (before value filters, as in Circe) and `Gender`; the observation window (PriorDays/PostDays);
  the primary limit First/Last/All;
- additional (qualifying) criteria and inclusion rules: groups ALL/ANY/AT_LEAST/AT_MOST with
  correlated criteria, occurrence counts (Type 0 exactly, 1 at most, 2 at least; IsDistinct counts
  distinct concepts) in StartWindow/EndWindow day windows, IgnoreObservationPeriod;
- qualified and expression limits First/Last/All (the qualified limit only with additional criteria);
  end strategies DateOffset, CustomEra (drug eras) and (the default) end of the observation period;
  censoring criteria and the censor window; collapse into eras with EraPad.

Semantics follow Circe's generated SQL: an event without an end date ends one day after it starts
(drugs: start + days_supply when there is no end date); an event counts for the observation window
when its start lies in an observation period; a cohort end never passes the end of the index event's
observation period; inclusion rules all have to hold.

A project extension, `VariantOccurrence` (the G-CDM join: variant_occurrence -> target_gene,
dated by its specimen), lets the YAML form express genomic cohorts such as BRCA1 c.5266dupC carriers,
or carriers of any pathogenic variant on a list of genes (variant_annotation's clinical significance).

The compiler is ``cohort_compiler``, the YAML form ``cohort_yaml``; this module reads definition files
and writes cohorts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.lib.analytics.cohort_compiler import UnsupportedCohortConstruct, compile_cohort
from rwe_assets.lib.analytics.cohort_yaml import yaml_to_circe

__all__ = [
    "CohortDefinition",
    "CohortResult",
    "UnsupportedCohortConstruct",
    "cohort_files",
    "compile_cohort",
    "load_cohort",
    "write_cohort",
    "yaml_to_circe",
]


@dataclass(frozen=True)
class CohortDefinition:
    cohort_definition_id: int
    name: str
    description: str
    expression: dict  # Circe expression (the YAML form is translated into it)
    syntax: str  # the text the definition was read from, stored in cohort_definition_syntax
    source: str  # file name, for messages and asset metadata


# ---------------------------------------------------------------- reading definitions


def load_cohort(path: Path) -> CohortDefinition:
    """A cohort definition from a Circe JSON file (id = the file's numeric stem) or a YAML file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        if not path.stem.isdigit():
            raise ConfigError(f"{path.name}: a Circe JSON cohort file is named <cohort_definition_id>.json")
        return CohortDefinition(
            int(path.stem), f"ATLAS cohort {path.stem}", "", json.loads(text), text, path.name
        )
    return _from_yaml(path, text)


def _from_yaml(path: Path, text: str) -> CohortDefinition:
    doc = yaml.safe_load(text) or {}
    for key in ("id", "name"):
        if key not in doc:
            raise ConfigError(f"{path.name}: a YAML cohort needs '{key}'")
    if "circe" in doc:  # a name and description for an ATLAS export kept beside it
        circe_text = (path.parent / doc["circe"]).read_text(encoding="utf-8")
        expression, syntax = json.loads(circe_text), circe_text
    else:
        expression, syntax = yaml_to_circe(doc, path.name), text
    return CohortDefinition(
        int(doc["id"]), str(doc["name"]), str(doc.get("description", "")), expression, syntax, path.name
    )


def cohort_files(folder: Path) -> list[Path]:
    """Cohort definition files of a folder: every YAML file, and every JSON file no YAML names."""
    folder = Path(folder)
    yamls = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    named = {str((yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("circe")) for p in yamls}
    jsons = sorted(p for p in folder.glob("*.json") if p.name not in named)
    return yamls + jsons


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class CohortResult:
    cohort_definition_id: int
    rows: int
    persons: int
    sql: str


def write_cohort(
    con: duckdb.DuckDBPyConnection, definition: CohortDefinition, today: dt.date | None = None
) -> CohortResult:
    """Replace the cohort's rows in cdm.cohort and its row in cdm.cohort_definition, in one transaction."""
    sql = compile_cohort(definition.expression)
    cid = definition.cohort_definition_id
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM cdm.cohort WHERE cohort_definition_id = ?", [cid])
        con.execute(
            f"INSERT INTO cdm.cohort SELECT {cid}, subject_id, cohort_start_date, cohort_end_date FROM ({sql})"
        )
        con.execute("DELETE FROM cdm.cohort_definition WHERE cohort_definition_id = ?", [cid])
        # definition_type_concept_id and subject_concept_id: 0, no standard concept fits a Circe cohort of persons
        con.execute(
            "INSERT INTO cdm.cohort_definition VALUES (?, ?, ?, 0, ?, 0, ?)",
            [cid, definition.name, definition.description, definition.syntax, today or dt.date.today()],
        )
        rows, persons = con.execute(
            "SELECT count(*), count(DISTINCT subject_id) FROM cdm.cohort WHERE cohort_definition_id = ?",
            [cid],
        ).fetchone()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return CohortResult(cid, rows, persons, sql)
