"""The build's results tables and its row accounting: unmapped codes, mapping summary, linkage
metrics, staging outcomes and results.reconciliation (staged rows -> CDM rows, every one accounted for)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm.ledger import ledger_totals
from rwe_assets.lib.cdm.steps import EVENT_TABLES
from rwe_assets.lib.genomics.cdm import GenomicsCdmReport
from rwe_assets.lib.raw_ingest import read_manifest

CODE_VERSION = "rwe_assets 0.1.0"


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
    """What one build_cdm call built (lib/cdm/build.py)."""

    path: Path
    row_counts: dict[str, int]
    vocabulary_version: str | None
    unmapped_rows: int
    visits_merged: int
    reconciliation: tuple[CdmReconciliation, ...] = ()
    step_seconds: dict[str, float] = field(default_factory=dict)  # per step of lib/cdm/steps.py, in order
    vocabulary_warning: str | None = None  # the demo subset used on data it does not map
    reused: bool = False  # the inputs were the last build's: its file was kept (lib/cdm/reuse.py)
    mode: str = "full"  # 'full', 'incremental' (lib/cdm/incremental.py) or 'reused'
    mode_reason: str = ""  # why: the fallback rule of docs/operations.md, "Incremental refresh"
    persons_rebuilt: int | None = None  # incremental: the persons whose rows were rebuilt
    resumed_from: str | None = None  # the step a failed build of the same inputs stopped at


def cdm_source(con, lake_dir: Path, version: str | None) -> None:
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


def unmapped_codes(con) -> int:
    """results.unmapped_codes (ranked by rows, then persons) and results.mapping_summary, summed over
    the per-person ledger (lib/cdm/ledger.py: what this build, or the builds an incremental one
    continues, mapped). Returns the number of event rows with concept_id 0.

    unmapped_codes lists every source code the CDM rows carry that maps to no concept, with code_kind
    saying which field it fills: 'event code' (the row's own concept 0), 'value' (a coded result whose
    value_as_concept_id is 0), 'unit' (a unit_source_value whose unit_concept_id is 0; vocabulary
    UCUM, as it was looked up there) or 'language' (a note's stated BCP-47 tag whose
    language_concept_id is 0; no vocabulary)."""
    con.execute(
        """
        CREATE OR REPLACE TABLE results.unmapped_codes AS
        WITH counts AS (
            SELECT code_kind, vocabulary_id, code, cdm_table, min(description) AS description,
                   sum(rows)::BIGINT AS rows, count(DISTINCT person_id) AS persons
            FROM results.unmapped_by_person GROUP BY code_kind, vocabulary_id, code, cdm_table
        )
        SELECT code_kind, vocabulary_id, code, description, cdm_table, rows, persons,
               rank() OVER (ORDER BY rows DESC, persons DESC) AS rank
        FROM counts
        ORDER BY rank, code_kind, vocabulary_id, code
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE results.mapping_summary AS
        SELECT cdm_table, source_system, mapping_rule, sum(rows)::BIGINT AS rows
        FROM results.mapping_by_person GROUP BY ALL ORDER BY ALL
        """
    )
    return con.execute(
        "SELECT coalesce(sum(rows), 0) FROM results.unmapped_by_person WHERE code_kind = 'event code'"
    ).fetchone()[0]


def linkage_metrics(con, lake_dir: Path) -> None:
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


def staging_outcomes(con, lake_dir: Path) -> None:
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


def not_modelled(con, lake_dir: Path) -> None:
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


def exclude_unobserved_persons(con) -> int:
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
        "person_source", "person", staged, row_count(con, "cdm.person"), in_cdm - persons, 0, excluded,
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


def reconcile(con, genomics: GenomicsCdmReport | None = None) -> tuple[CdmReconciliation, ...]:
    """Staging -> CDM row accounting, also written to results.reconciliation. Persons merge when
    linkage finds one person behind several source records (person_reconciliation); visits merge by
    the rollup rules; an event whose code maps to n standard concepts becomes n rows (n - 1 extra). The
    rows of a person left out for want of a year of birth are excluded in every table. Merged visits,
    extra event rows and unlinked costs are summed over results.reconciliation_by_person
    (lib/cdm/ledger.py); the staged and CDM rows are counted in the tables."""
    visits_merged, extra_events, unlinked_costs = ledger_totals(con)
    excluded_visits = _rows_of_persons_without_birth_year(con, "stg_visit")
    rows = [
        person_reconciliation(con),
        CdmReconciliation(
            "visit",
            "visit_occurrence",
            row_count(con, "stg_visit"),
            row_count(con, "cdm.visit_occurrence"),
            visits_merged,
            0,
            excluded_visits,
        ),
        CdmReconciliation(
            "visit",
            "visit_detail",
            row_count(con, "stg_visit"),
            row_count(con, "cdm.visit_detail"),
            0,
            0,
            excluded_visits,
        ),
        CdmReconciliation(
            "note",
            "note",
            row_count(con, "stg_note"),
            row_count(con, "cdm.note"),
            0,
            0,
            _rows_of_persons_without_birth_year(con, "stg_note"),
        ),
    ]
    staged_events = row_count(con, "stg_event")
    # The genetic tests' PROCEDURE_OCCURRENCE rows come from staged specimens, not staged events.
    written = sum(row_count(con, f"cdm.{table}") for table in EVENT_TABLES) - (
        genomics.procedures if genomics else 0
    )
    rows.append(
        CdmReconciliation(
            "event",
            "+".join(EVENT_TABLES),
            staged_events,
            written,
            0,
            extra_events,
            _rows_of_persons_without_birth_year(con, "stg_event"),
        )
    )
    if genomics:
        rows += _genomics_reconciliation(con, genomics)
    rows.append(
        CdmReconciliation(
            "cost", "cost", row_count(con, "stg_cost"), row_count(con, "cdm.cost"), 0, 0, unlinked_costs
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
            row_count(con, "stg_genomics_specimen"),
            genomics.specimens,
            0,
            0,
            genomics.unlinked_specimens,
        ),
        CdmReconciliation(
            "variant",
            "variant_occurrence",
            row_count(con, "stg_genomics_variant"),
            genomics.variant_occurrences,
            0,
            0,
            genomics.unlinked_variants,
        ),
    ]


def row_count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
