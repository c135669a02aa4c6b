"""What the CDM build reads besides its SQL: the staging tables and the crosswalk registered as views,
and the small lookup tables written from code (unit spellings, US states, source priorities)."""

from __future__ import annotations

from pathlib import Path

from rwe_assets.lib import lake
from rwe_assets.lib.cdm.steps import STAGING_VIEWS
from rwe_assets.lib.sources import SourceRegistry

# Source unit spellings -> the concept_code the OMOP UCUM vocabulary uses (see unit_map.sql): UCUM's
# arbitrary units as OMOP spells them (prefixes as powers of ten), and common non-UCUM spellings whose
# meaning is unambiguous. Each target is a standard UCUM concept of the bundled vocabulary (tested).
UNIT_ALIASES = {
    "U/L": "[U]/L",
    "kU/L": "10*3.[U]/L",
    "mU/L": "10*-3.[U]/L",
    "U/mL": "[U]/mL",
    "IU/L": "[iU]/L",
    "IU/mL": "[iU]/mL",
    "mIU/mL": "10*-3.[iU]/mL",
    "uIU/mL": "10*-6.[iU]/mL",
    "/a": "/y",  # per year: OMOP's UCUM concept is coded /y
    "mmHg": "mm[Hg]",
    "mm Hg": "mm[Hg]",
    "beats/minute": "/min",
    "beats/min": "/min",
    "{beats}/min": "/min",
    "breaths/minute": "/min",
    "breaths/min": "/min",
    "{breaths}/min": "/min",
    "degC": "Cel",
    "°C": "Cel",
    "degF": "[degF]",
    "°F": "[degF]",
}
# Spellings that name another UCUM unit (C coulomb, F farad) but a temperature in Celsius or Fahrenheit
# when the measurement is a temperature; for any other measurement they are ambiguous: concept 0.
TEMPERATURE_UNIT_ALIASES = {"C": "Cel", "F": "[degF]"}
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico",
}  # fmt: skip


def register_inputs(con, lake_dir: Path) -> None:
    """The staging tables as views stg_<table>, the crosswalk as crosswalk_all, and the lookup tables
    written here (unit_alias, us_state)."""
    for name in STAGING_VIEWS:
        if not lake.register_parquet_view(con, f"stg_{name}", lake.table_path(lake_dir, "staging", name)):
            raise FileNotFoundError(
                f"staging/{name} does not exist yet: materialize the staging assets first"
            )
    crosswalk = lake.read_table(lake.table_path(lake_dir, "linkage", "person_crosswalk"))
    if crosswalk is None:
        raise FileNotFoundError(
            "linkage/person_crosswalk does not exist yet: materialize the linkage assets first"
        )
    # as linkage wrote it; person.sql defines the view `crosswalk` the later steps join, without the
    # persons PERSON leaves out
    con.register("crosswalk_all", crosswalk)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE unit_alias (source_code VARCHAR, ucum_code VARCHAR, temperature_only BOOLEAN)"
    )
    con.executemany(
        "INSERT INTO unit_alias VALUES (?, ?, ?)",
        [(k, v, False) for k, v in sorted(UNIT_ALIASES.items())]
        + [(k, v, True) for k, v in sorted(TEMPERATURE_UNIT_ALIASES.items())],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE us_state (code VARCHAR, name VARCHAR)")
    con.executemany("INSERT INTO us_state VALUES (?, ?)", sorted(US_STATES.items()))


def register_sources(con, registry: SourceRegistry) -> None:
    """What the registry says of each source, as tables: source_priority (source_system,
    person_priority), the rank of its demographics (person.sql); source_kind (source_system, kind): ehr,
    claims, ... A source is claims by its kind, not by whether it sends enrollment: an EHR sends that
    too (Synthea's payer_transitions, FHIR Coverage), and its race text and death dates are no payer's
    (person.sql reads CMS race and sex codes, death.sql types a death, by the kind)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE source_priority (source_system VARCHAR, person_priority INTEGER)"
    )
    ranked = [(s.name, s.person_priority) for s in registry if s.person_priority is not None]
    if ranked:
        con.executemany("INSERT INTO source_priority VALUES (?, ?)", ranked)
    con.execute("CREATE OR REPLACE TEMP TABLE source_kind (source_system VARCHAR, kind VARCHAR)")
    kinds = [(s.name, s.kind) for s in registry]
    if kinds:
        con.executemany("INSERT INTO source_kind VALUES (?, ?)", kinds)
