"""Build the OMOP CDM v5.4 database (DuckDB) from staging, the vocabulary and the person crosswalk.

The build writes a fresh `build.duckdb` (the previous one is replaced only when the new one is
complete), so a crash leaves the last good build and the published file untouched. Steps, each in
lib/sql/cdm/<step>.sql with its rule written at its top:

  vocabulary -> location -> care_site -> provider -> person -> visits (rollup) -> visit_detail ->
  mapped events (source code -> standard concept -> domain -> table) -> the event tables -> note -> death ->
  observation_period -> eras -> cdm_source -> results (unmapped codes, reconciliation, mapping)

Ids come from persistent id maps (lib/id_map.py), so the same input gives the same ids.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import eras, reuse
from rwe_assets.lib.cdm.visits import rollup_visits
from rwe_assets.lib.cdm.vocabulary_change import record_vocabulary
from rwe_assets.lib.cdm_spec import cdm_ddl, cdm_spec
from rwe_assets.lib.genomics.cdm import GCDM_TABLES, GenomicsCdmReport, build_genomics_cdm, gcdm_ddl
from rwe_assets.lib.genomics.staging import VARIANT as GENOMICS_VARIANT
from rwe_assets.lib.id_map import assign_ids
from rwe_assets.lib.publish import PUBLISHED
from rwe_assets.lib.raw_ingest import read_manifest
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.vocabulary import (
    VOCABULARY_TABLES,
    VocabularyStore,
    ensure_vocabulary_store,
    start_from_store,
)

_KEY = "source_system || '|' || {} AS natural_key"
_PARAMETER = re.compile(r"\$([a-z_0-9]+)")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "cdm"
CODE_VERSION = "rwe_assets 0.1.0"
EVENT_TABLES = (
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "device_exposure",
)
STAGING_VIEWS = ("person_source", "visit", "event", "note", "provider", "care_site", "enrollment", "cost")
PARAMETERS = {
    "type_ehr": c.EHR,
    "type_ehr_prescription": c.EHR_PRESCRIPTION,
    "type_ehr_administration": c.EHR_ADMINISTRATION_RECORD,
    "type_ehr_encounter": c.EHR_ENCOUNTER_RECORD,
    "type_claim": c.CLAIM,
    "type_pharmacy_claim": c.PHARMACY_CLAIM,
    "primary_diagnosis": c.PRIMARY_DIAGNOSIS,
    "secondary_diagnosis": c.SECONDARY_DIAGNOSIS,
    "utf8": c.UTF8,
    "english": c.ENGLISH,
    "male": c.MALE,
    "female": c.FEMALE,
    "white": c.WHITE,
    "black": c.BLACK_OR_AFRICAN_AMERICAN,
    "asian": c.ASIAN,
    "american_indian": c.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    "pacific_islander": c.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
    "hispanic": c.HISPANIC_OR_LATINO,
    "not_hispanic": c.NOT_HISPANIC_OR_LATINO,
    "allergy_to_drug": c.ALLERGY_TO_DRUG,
    "allergic_disposition": c.ALLERGIC_DISPOSITION,
    "intolerance_to_drug": c.INTOLERANCE_TO_DRUG,
    "intolerance_to_substance": c.INTOLERANCE_TO_SUBSTANCE,
}
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


@dataclass(frozen=True)
class CdmReconciliation:
    """How the rows of one staging table reached the CDM: staged = written + merged - extra, where
    `extra` counts rows added because a source code maps to several standard concepts."""

    staged_table: str
    cdm_table: str
    staged_rows: int
    cdm_rows: int
    merged_rows: int
    extra_rows: int
    excluded_rows: int = 0  # rows of persons PERSON leaves out (results.person_exclusion), by reason below
    excluded_reasons: tuple[tuple[str, int], ...] = ()  # (reason_code, staged rows), persons only

    @property
    def unaccounted(self) -> int:
        return self.staged_rows - (self.cdm_rows - self.extra_rows) - self.merged_rows - self.excluded_rows


@dataclass(frozen=True)
class CdmBuildReport:
    path: Path
    row_counts: dict[str, int]
    vocabulary_version: str | None
    unmapped_rows: int
    visits_merged: int
    reconciliation: tuple[CdmReconciliation, ...] = ()
    step_seconds: dict[str, float] = field(default_factory=dict)
    vocabulary_warning: str | None = None  # the demo subset used on data it does not map
    reused: bool = False  # the inputs were the last build's: its file was kept (lib/cdm/reuse.py)


def build_cdm(
    lake_dir: Path,
    vocab_dir: Path,
    warehouse_dir: Path,
    *,
    memory_limit: str = "8GB",
    threads: int = 2,
    registry: SourceRegistry | None = None,
    reuse_unchanged: bool = True,
) -> CdmBuildReport:
    """Build warehouse/build.duckdb from scratch and swap it in once complete. `registry` (default: the
    project's) gives each source's person_priority (lib/sql/cdm/person.sql). With `reuse_unchanged`,
    a build.duckdb made from the same inputs (lib/cdm/reuse.py) is kept instead."""
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    final = warehouse_dir / "build.duckdb"
    work = warehouse_dir / "build.duckdb.partial"
    # A killed build leaves its file and its write-ahead log. Both go: the new file is a copy of the same
    # vocabulary store, so DuckDB would take the old log for its own and replay the killed build's rows.
    for leftover in (work, work.with_name(work.name + ".wal")):
        leftover.unlink(missing_ok=True)
    store = ensure_vocabulary_store(vocab_dir, warehouse_dir / "vocabulary")
    registry = registry or load_registry()
    fingerprint = reuse.input_fingerprint(lake_dir, store.digest, registry)
    if reuse_unchanged and fingerprint is not None and reuse.recorded_fingerprint(final) == fingerprint:
        return _reused_report(final, store)
    start_from_store(store, work)  # the vocabulary tables come as the store's file, not re-inserted
    con = duckdb.connect(str(work))
    try:
        _configure(con, warehouse_dir, memory_limit, threads)
        report = _build(con, lake_dir, store, final, registry)
        reuse.record_fingerprint(con, fingerprint)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(work, final)
    return report


def _reused_report(final: Path, store: VocabularyStore) -> CdmBuildReport:
    """The report of the build that made `final`, read back from it (excluded_reasons are not stored)."""
    started = time.perf_counter()
    with duckdb.connect(str(final), read_only=True) as con:
        names = [t.name for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES] + list(GCDM_TABLES)
        counts = {name: _count(con, f"cdm.{name}") for name in names}
        (unmapped,) = con.execute(
            "SELECT coalesce(sum(rows), 0) FROM results.unmapped_codes WHERE code_kind = 'event code'"
        ).fetchone()
        rows = con.execute(
            "SELECT staged_table, cdm_table, staged_rows, cdm_rows, merged_rows, extra_rows, excluded_rows "
            "FROM results.reconciliation WHERE layer = 'cdm'"
        ).fetchall()
        (warning,) = con.execute("SELECT any_value(warning) FROM results.vocabulary").fetchone()
    reconciliation = tuple(CdmReconciliation(*row) for row in rows)
    merged = sum(r.merged_rows for r in reconciliation if r.cdm_table == "visit_occurrence")
    seconds = {"reused": time.perf_counter() - started}
    return CdmBuildReport(
        final, counts, store.version, int(unmapped), merged, reconciliation, seconds, warning, True
    )


def _configure(con, warehouse_dir: Path, memory_limit: str, threads: int) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET temp_directory = '{warehouse_dir / 'tmp'}'")
    con.execute("SET preserve_insertion_order = false")


class _Timer:
    """Seconds per build step, for asset metadata and the benchmark."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _build(
    con, lake_dir: Path, store: VocabularyStore, final: Path, registry: SourceRegistry
) -> CdmBuildReport:
    timer = _Timer()
    with timer.step("ddl_and_vocabulary"):
        for statement in cdm_ddl("cdm"):
            con.execute(statement)
        con.execute("CREATE SCHEMA IF NOT EXISTS results")
        _register_inputs(con, lake_dir)
        _register_person_priority(con, registry)
    with timer.step("person_location_provider"):
        run_sql(con, "location_input")
        assign_ids(con, lake_dir, "location", "SELECT natural_key FROM location_input")
        assign_ids(con, lake_dir, "care_site", f"SELECT {_KEY.format('care_site_key')} FROM stg_care_site")
        assign_ids(con, lake_dir, "provider", f"SELECT {_KEY.format('provider_key')} FROM stg_provider")
        for step in ("location", "care_site", "provider", "person"):
            run_sql(con, step)
    with timer.step("visits"):
        run_sql(con, "visit_input")
        rollup = rollup_visits(con, "visit_input", "temp.main.rollup")  # scratch: not in the published file
        assign_ids(
            con, lake_dir, "visit_occurrence", "SELECT visit_group_key AS natural_key FROM rollup_visit"
        )
        assign_ids(con, lake_dir, "visit_detail", "SELECT visit_key AS natural_key FROM rollup_visit_map")
        run_sql(con, "visit_occurrence")
        run_sql(con, "visit_detail")
    with timer.step("mapping"):
        run_sql(con, "mapped_event")
        run_sql(con, "unit_map")
    for table in EVENT_TABLES:
        with timer.step(table):
            assign_ids(
                con, lake_dir, table, f"SELECT natural_key FROM mapped_event WHERE cdm_table = '{table}'"
            )
            run_sql(con, table)
    with timer.step("genomics"):
        genomics = _genomics(con, lake_dir)
    with timer.step("note"):
        assign_ids(con, lake_dir, "note", f"SELECT {_KEY.format('record_key')} FROM stg_note")
        run_sql(con, "note")
    with timer.step("payer_plan_period_and_cost"):
        run_sql(con, "payer_plan_period")
        assign_ids(con, lake_dir, "payer_plan_period", "SELECT natural_key FROM payer_plan_span")
        run_sql(con, "payer_plan_period_insert")
        assign_ids(con, lake_dir, "cost", f"SELECT {_KEY.format('record_key')} FROM stg_cost")
        run_sql(con, "cost")
    with timer.step("death_and_observation_period"):
        run_sql(con, "death")
        run_sql(con, "drug_end_at_death")
        _observation_period(con)
        _exclude_unobserved_persons(con)
    for name, build in (
        ("condition_era", eras.build_condition_era),
        ("drug_era", eras.build_drug_era),
        ("dose_era", eras.build_dose_era),
    ):
        with timer.step(name):
            build(con, "cdm")
    with timer.step("cdm_source_and_results"):
        version = store.version
        _cdm_source(con, lake_dir, version)
        vocabulary_warning = record_vocabulary(con, store, final.parent / PUBLISHED, EVENT_TABLES)
        unmapped = _results(con)
        _linkage_metrics(con, lake_dir)
        _staging_outcomes(con, lake_dir)
        counts = {
            t.name: _count(con, f"cdm.{t.name}") for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES
        }
        counts.update({t: _count(con, f"cdm.{t}") for t in GCDM_TABLES})
        reconciliation = _reconcile(con, rollup.merged_rows, genomics)
        _not_modelled(con, lake_dir)
    return CdmBuildReport(
        final,
        counts,
        version,
        unmapped,
        rollup.merged_rows,
        reconciliation,
        dict(timer.seconds),
        vocabulary_warning,
    )


def _genomics(con, lake_dir: Path) -> GenomicsCdmReport | None:
    """SPECIMEN, the genetic tests' PROCEDURE_OCCURRENCE rows and the G-CDM tables (lib/genomics/cdm.py),
    before observation periods so a tested person's test date counts as observed. Without any staged
    lab data the G-CDM tables are created empty."""
    if lake.open_table(lake.table_path(lake_dir, "staging", GENOMICS_VARIANT)) is None:
        for statement in gcdm_ddl("cdm"):
            con.execute(statement)
        return None
    return build_genomics_cdm(con, lake_dir, "crosswalk")


def run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Run lib/sql/cdm/<name>.sql with the concept-id parameters it uses."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    for statement in (s for s in text.split(";\n") if s.strip() and not _only_comments(s)):
        used = {name: PARAMETERS[name] for name in set(_PARAMETER.findall(statement))}
        con.execute(statement, used)


def _only_comments(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


def _register_inputs(con, lake_dir: Path) -> None:
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


def _register_person_priority(con, registry: SourceRegistry) -> None:
    """Table source_priority (source_system, person_priority): the registry's rank of each source's
    demographics, read by person.sql."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE source_priority (source_system VARCHAR, person_priority INTEGER)"
    )
    ranked = [(s.name, s.person_priority) for s in registry if s.person_priority is not None]
    if ranked:
        con.executemany("INSERT INTO source_priority VALUES (?, ?)", ranked)


def _cdm_source(con, lake_dir: Path, version: str | None) -> None:
    """One CDM_SOURCE row: what built this database. cdm_etl_reference carries the code version and a
    digest of every ingested file's sha256, so a CDM can be traced to exactly what built it; the file
    list itself is results.build_inputs."""
    manifest = read_manifest(lake_dir).to_pylist()
    files = sorted(
        {(r["source"], r["relative_path"], r["file_sha256"]) for r in manifest if r["status"] == "ingested"}
    )
    digest = hashlib.sha256("\n".join("|".join(f) for f in files).encode()).hexdigest()
    con.execute(
        "CREATE OR REPLACE TABLE results.build_inputs (source VARCHAR, relative_path VARCHAR, file_sha256 VARCHAR)"
    )
    if files:
        con.executemany("INSERT INTO results.build_inputs VALUES (?, ?, ?)", files)
    con.execute(
        """
        INSERT INTO cdm.cdm_source BY NAME
        SELECT 'rwe_assets lakehouse' AS cdm_source_name, 'rwe' AS cdm_source_abbreviation,
               'rwe_assets' AS cdm_holder,
               'EHR (Synthea CSV, FHIR R4), claims and genomics linked into one OMOP CDM' AS source_description,
               $release AS source_release_date, $release AS cdm_release_date,
               'v5.4' AS cdm_version, $cdm_version_concept_id AS cdm_version_concept_id,
               $vocabulary_version AS vocabulary_version,
               $etl_reference AS cdm_etl_reference
        """,
        {
            "release": date.today(),
            "cdm_version_concept_id": c.CDM_VERSION_5_4,
            "vocabulary_version": (version or "unknown")[:20],
            "etl_reference": f"{CODE_VERSION}; inputs sha256 {digest[:16]}",
        },
    )


def _results(con) -> int:
    """results.unmapped_codes (ranked by rows, then persons) and results.mapping_summary. Returns the
    number of event rows with concept_id 0.

    unmapped_codes lists every source code the CDM rows carry that maps to no concept, with code_kind
    saying which field it fills: 'event code' (the row's own concept 0), 'value' (a coded result whose
    value_as_concept_id is 0) or 'unit' (a unit_source_value whose unit_concept_id is 0; vocabulary
    UCUM, as it was looked up there)."""
    con.execute(
        """
        CREATE OR REPLACE TABLE results.unmapped_codes AS
        WITH unmapped AS (
            SELECT 'event code' AS code_kind, vocabulary_id, code, cdm_table, person_id
            FROM mapped_event WHERE concept_id = 0
            UNION ALL
            SELECT 'value', value_vocabulary_id, value_code, cdm_table, person_id
            FROM mapped_event
            WHERE value_code IS NOT NULL AND value_concept_id = 0 AND event_kind <> 'allergy'
              AND cdm_table IN ('measurement', 'observation')
            UNION ALL
            SELECT 'unit', 'UCUM', m.unit_source_value, m.cdm_table, m.person_id
            FROM mapped_event m
            JOIN unit_map u ON u.unit_source_value = m.unit_source_value AND u.concept_id = m.concept_id
            WHERE u.unit_concept_id = 0 AND m.cdm_table IN ('measurement', 'observation')
        ),
        counts AS (
            SELECT code_kind, vocabulary_id, code, cdm_table, count(*) AS rows, count(DISTINCT person_id) AS persons
            FROM unmapped GROUP BY ALL
        )
        SELECT u.code_kind, u.vocabulary_id, u.code,
               CASE WHEN u.code_kind <> 'unit' THEN d.code_description END AS description,
               u.cdm_table, u.rows, u.persons, rank() OVER (ORDER BY u.rows DESC, u.persons DESC) AS rank
        FROM counts u
        LEFT JOIN code_map d
            ON d.concept_id = 0 AND d.vocabulary_id IS NOT DISTINCT FROM u.vocabulary_id
           AND d.code IS NOT DISTINCT FROM u.code
        ORDER BY rank, code_kind, vocabulary_id, code
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE results.mapping_summary AS
        SELECT cdm_table, source_system, mapping_rule, count(*) AS rows
        FROM mapped_event GROUP BY ALL ORDER BY ALL
        """
    )
    return con.execute("SELECT count(*) FROM mapped_event WHERE concept_id = 0").fetchone()[0]


def _observation_period(con) -> None:
    """Enrolled persons: their merged enrollment spans combined with the span of their EHR events;
    everyone else: the span of their events (rule in observation_period.sql)."""
    eras.build_observation_period_with_enrollment(
        con,
        "cdm",
        "payer_plan_period",
        period_type_concept_id=c.STANDARD_ALGORITHM_FROM_EHR,
        enrollment_period_type_concept_id=c.PERIOD_WHILE_ENROLLED_IN_INSURANCE,
        combine_event_span=True,
        claim_type_concept_ids=(c.CLAIM, c.PHARMACY_CLAIM),
    )


def _linkage_metrics(con, lake_dir: Path) -> None:
    """results.linkage_metrics: the linkage layer's quality table, published for analysts (the tokens,
    pairs and crosswalk themselves stay in the lake)."""
    if lake.register_view(con, "linkage_metrics_input", lake.table_path(lake_dir, "linkage", "metrics")):
        con.execute("CREATE OR REPLACE TABLE results.linkage_metrics AS SELECT * FROM linkage_metrics_input")
    else:
        con.execute(
            "CREATE OR REPLACE TABLE results.linkage_metrics "
            "(metric VARCHAR, dimension VARCHAR, value DOUBLE, computed_at TIMESTAMP WITH TIME ZONE)"
        )


# The staging tables of rows not staged, by outcome (lib/staging/build.py, lib/staging/lifecycle.py).
STAGING_OUTCOMES = {"quarantined": "_quarantine", "merged": "_merged", "retired": "_retired"}


def _staging_outcomes(con, lake_dir: Path) -> None:
    """results.staging_outcomes: rows per staging outcome, table, source, raw entity and reason, so an
    analyst sees what the CDM leaves out and why (superseded versions, retired and quarantined rows)."""
    parts = []
    for outcome, table in STAGING_OUTCOMES.items():
        if lake.register_parquet_view(con, f"stg{table}", lake.table_path(lake_dir, "staging", table)):
            parts.append(
                f"SELECT '{outcome}' AS outcome, staging_table, source_system, _source_entity AS source_entity, "
                f"reason_code, count(*) AS row_count FROM stg{table} GROUP BY ALL"
            )
    empty = "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::BIGINT WHERE false"
    con.execute(
        "CREATE OR REPLACE TABLE results.staging_outcomes (outcome VARCHAR, staging_table VARCHAR, "
        "source_system VARCHAR, source_entity VARCHAR, reason_code VARCHAR, row_count BIGINT)"
    )
    con.execute(f"INSERT INTO results.staging_outcomes {' UNION ALL '.join(parts) or empty} ORDER BY ALL")


def _not_modelled(con, lake_dir: Path) -> None:
    """Rows results.reconciliation adds for what stays in raw because nothing models it (a FHIR
    Provenance, Location, a Synthea claims file: staging's _not_modelled): layer 'raw', cdm_table
    'not_modelled', staged_table '<source>/<entity or resource type>', all rows excluded, none lost."""
    if lake.register_parquet_view(
        con, "stg_not_modelled", lake.table_path(lake_dir, "staging", "_not_modelled")
    ):
        con.execute(
            "INSERT INTO results.reconciliation SELECT 'raw', source_system || '/' || source_entity, "
            "'not_modelled', raw_rows, 0, 0, 0, raw_rows, 0 FROM stg_not_modelled ORDER BY ALL"
        )


def _exclude_unobserved_persons(con) -> int:
    """Persons with no event at all (a newborn registered but never seen, say) have no observation
    period; OHDSI's THEMIS convention keeps such persons out of PERSON. They stay in staging, are
    recorded in results.person_exclusion (NO_OBSERVATION_PERIOD) and counted in results.reconciliation
    as excluded; a death date is their only other row, and goes with them."""
    condition = "person_id NOT IN (SELECT person_id FROM cdm.observation_period)"
    count = con.execute(f"SELECT count(*) FROM cdm.person WHERE {condition}").fetchone()[0]
    con.execute(
        f"INSERT INTO results.person_exclusion SELECT person_id, 'NO_OBSERVATION_PERIOD' FROM cdm.person WHERE {condition}"
    )
    con.execute("DELETE FROM cdm.death WHERE person_id IN (SELECT person_id FROM results.person_exclusion)")
    con.execute(f"DELETE FROM cdm.person WHERE {condition}")
    return count


# Why a linked person has no PERSON row (results.person_exclusion).
PERSON_EXCLUSION_REASONS = {
    "NO_YEAR_OF_BIRTH": "none of the person's records gives a year of birth (OMOP requires one): the "
    "person's rows are left out of every CDM table (person.sql) and counted as excluded",
    "NO_OBSERVATION_PERIOD": "no event at all, so no observation period (OHDSI THEMIS)",
}


def person_reconciliation(con) -> CdmReconciliation:
    """Staged person records -> PERSON, counted from the crosswalk rather than by difference: a staged
    record (stg_person_source) is in PERSON when its person_id (crosswalk_all) has a PERSON row, merged
    when another record of the same person_id is that row's other source, excluded when its person is
    in results.person_exclusion. merged = records in PERSON - their distinct persons; a record whose
    person is neither in PERSON nor excluded (unlinked, or a PERSON row deleted after the build) is
    unaccounted, as is a PERSON row no staged record leads to."""
    staged, in_cdm, persons, excluded = con.execute(
        """
        SELECT count(*), count(c.person_id), count(DISTINCT c.person_id), count(e.person_id)
        FROM stg_person_source p
        LEFT JOIN crosswalk_all x USING (source_system, source_person_id)
        LEFT JOIN (SELECT DISTINCT person_id FROM cdm.person) c ON c.person_id = x.person_id
        LEFT JOIN (SELECT DISTINCT person_id FROM results.person_exclusion) e
            ON e.person_id = x.person_id AND c.person_id IS NULL
        """
    ).fetchone()
    reasons = con.execute(
        """
        SELECT e.reason_code, count(*) FROM stg_person_source p
        JOIN crosswalk_all x USING (source_system, source_person_id)
        JOIN results.person_exclusion e ON e.person_id = x.person_id
        WHERE x.person_id NOT IN (SELECT person_id FROM cdm.person)
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    return CdmReconciliation(
        "person_source", "person", staged, _count(con, "cdm.person"), in_cdm - persons, 0, excluded,
        tuple(reasons),
    )  # fmt: skip


def reconcile_persons(database: Path, lake_dir: Path) -> CdmReconciliation:
    """person_reconciliation over a built CDM file (read only) and the lake's staged persons and
    crosswalk: the check run again at any time after the build sees a PERSON row since deleted."""
    with duckdb.connect(str(database), read_only=True) as con:
        lake.register_parquet_view(
            con, "stg_person_source", lake.table_path(lake_dir, "staging", "person_source")
        )
        con.register(
            "crosswalk_all", lake.read_table(lake.table_path(lake_dir, "linkage", "person_crosswalk"))
        )
        return person_reconciliation(con)


def _rows_of_persons_without_birth_year(con, staged_view: str) -> int:
    """Staged rows whose person PERSON leaves out for want of a year of birth: no CDM table gets them
    (person.sql's crosswalk view leaves the person out)."""
    return con.execute(
        f"""
        SELECT count(*) FROM {staged_view} s JOIN crosswalk_all x USING (source_system, source_person_id)
        WHERE x.person_id IN (SELECT person_id FROM results.person_exclusion WHERE reason_code = 'NO_YEAR_OF_BIRTH')
        """
    ).fetchone()[0]


def _reconcile(
    con, visits_merged: int, genomics: GenomicsCdmReport | None = None
) -> tuple[CdmReconciliation, ...]:
    """Staging -> CDM row accounting, also written to results.reconciliation. Persons merge when
    linkage finds one person behind several source records (person_reconciliation); visits merge by
    the rollup rules; an event whose code maps to n standard concepts becomes n rows (n - 1 extra). The
    rows of a person left out for want of a year of birth are excluded in every table."""
    excluded_visits = _rows_of_persons_without_birth_year(con, "stg_visit")
    rows = [
        person_reconciliation(con),
        CdmReconciliation(
            "visit",
            "visit_occurrence",
            _count(con, "stg_visit"),
            _count(con, "cdm.visit_occurrence"),
            visits_merged,
            0,
            excluded_visits,
        ),
        CdmReconciliation(
            "visit",
            "visit_detail",
            _count(con, "stg_visit"),
            _count(con, "cdm.visit_detail"),
            0,
            0,
            excluded_visits,
        ),
        CdmReconciliation(
            "note",
            "note",
            _count(con, "stg_note"),
            _count(con, "cdm.note"),
            0,
            0,
            _rows_of_persons_without_birth_year(con, "stg_note"),
        ),
    ]
    staged_events = _count(con, "stg_event")
    # The genetic tests' PROCEDURE_OCCURRENCE rows come from staged specimens, not staged events.
    written = sum(_count(con, f"cdm.{table}") for table in EVENT_TABLES) - (
        genomics.procedures if genomics else 0
    )
    distinct = con.execute("SELECT count(DISTINCT (source_system, record_key)) FROM mapped_event").fetchone()[
        0
    ]
    mapped_rows = _count(con, "mapped_event")
    rows.append(
        CdmReconciliation(
            "event",
            "+".join(EVENT_TABLES),
            staged_events,
            written,
            0,
            mapped_rows - distinct,
            _rows_of_persons_without_birth_year(con, "stg_event"),
        )
    )
    if genomics:
        rows += _genomics_reconciliation(con, genomics)
    unlinked_costs = con.execute("SELECT count(*) FROM cost_input WHERE cost_event_id IS NULL").fetchone()[0]
    rows.append(
        CdmReconciliation(
            "cost", "cost", _count(con, "stg_cost"), _count(con, "cdm.cost"), 0, 0, unlinked_costs
        )
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE results.reconciliation (
            layer VARCHAR, staged_table VARCHAR, cdm_table VARCHAR, staged_rows BIGINT, cdm_rows BIGINT,
            merged_rows BIGINT, extra_rows BIGINT, excluded_rows BIGINT, unaccounted BIGINT)
        """
    )
    con.executemany(
        "INSERT INTO results.reconciliation VALUES ('cdm', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.staged_table,
                r.cdm_table,
                r.staged_rows,
                r.cdm_rows,
                r.merged_rows,
                r.extra_rows,
                r.excluded_rows,
                r.unaccounted,
            )
            for r in rows
        ],
    )
    return tuple(rows)


def _genomics_reconciliation(con, genomics: GenomicsCdmReport) -> list[CdmReconciliation]:
    """Staged specimens and variant calls -> SPECIMEN and VARIANT_OCCURRENCE; a sample whose person is
    not in the crosswalk (no linkable lab person) is excluded, with its calls, and counted."""
    return [
        CdmReconciliation(
            "specimen",
            "specimen",
            _count(con, "stg_genomics_specimen"),
            genomics.specimens,
            0,
            0,
            genomics.unlinked_specimens,
        ),
        CdmReconciliation(
            "variant",
            "variant_occurrence",
            _count(con, "stg_genomics_variant"),
            genomics.variant_occurrences,
            0,
            0,
            genomics.unlinked_variants,
        ),
    ]


def _count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
