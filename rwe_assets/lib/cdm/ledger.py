"""Per-person counts behind the build's whole-database results (issue 26, the incremental build).

results.unmapped_codes, results.mapping_summary and parts of results.reconciliation count rows of the
build's intermediates (mapped_event, the visit rollup, cost_input), which only a full build holds for
everyone. So every build keeps those counts per person in three ledger tables of the results schema,
and the results are sums over them: an incremental build (lib/cdm/incremental.py) replaces the
ledger rows of the persons it rebuilt and sums again, and gets what a full build gets.

- results.unmapped_by_person: unmapped source codes (event code, value, unit, note language) per
  person, with rows;
- results.mapping_by_person: event rows per person, CDM table, source system and mapping rule;
- results.reconciliation_by_person: visits merged by the rollup, mapped event rows and the distinct
  source records they come from, and costs linked to no event or visit. Costs whose source person
  the crosswalk does not hold count under person_id NULL.
"""

from __future__ import annotations

import duckdb

LEDGER_TABLES = ("unmapped_by_person", "mapping_by_person", "reconciliation_by_person")


def write_mapping_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """results.unmapped_by_person and results.mapping_by_person from this build's mapped_event (and
    its notes' languages, note_language)."""
    con.execute(
        """
        CREATE OR REPLACE TABLE results.unmapped_by_person AS
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
            UNION ALL  -- a note's stated language without a concept (NOTE has no field to keep it)
            SELECT 'language', NULL, n.language, 'note', CAST(x.person_id AS INTEGER)
            FROM stg_note n
            JOIN crosswalk x USING (source_system, source_person_id)
            JOIN note_language l ON l.language = n.language
            WHERE l.language_concept_id = 0
        )
        SELECT u.code_kind, u.vocabulary_id, u.code,
               min(CASE WHEN u.code_kind IN ('event code', 'value') THEN d.code_description END) AS description,
               u.cdm_table, u.person_id, count(*) AS rows
        FROM unmapped u
        LEFT JOIN code_map d
            ON d.concept_id = 0 AND d.vocabulary_id IS NOT DISTINCT FROM u.vocabulary_id
           AND d.code IS NOT DISTINCT FROM u.code
        GROUP BY u.code_kind, u.vocabulary_id, u.code, u.cdm_table, u.person_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE results.mapping_by_person AS
        SELECT person_id, cdm_table, source_system, mapping_rule, count(*) AS rows
        FROM mapped_event GROUP BY ALL
        """
    )


def write_reconciliation_ledger(con: duckdb.DuckDBPyConnection, rollup_map: str) -> None:
    """results.reconciliation_by_person from the visit rollup's map, mapped_event and cost_input."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE results.reconciliation_by_person AS
        WITH visits AS (
            SELECT vi.person_id, count(*) FILTER (WHERE m.rollup_rule <> 'none') AS visits_merged
            FROM {rollup_map} m JOIN visit_input vi USING (visit_key) GROUP BY ALL
        ),
        events AS (
            SELECT person_id, count(*) AS event_rows,
                   count(DISTINCT (source_system, record_key)) AS event_records
            FROM mapped_event GROUP BY ALL
        ),
        costs AS (
            SELECT x.person_id, count(*) AS unlinked_costs
            FROM cost_input c
            LEFT JOIN crosswalk_all x USING (source_system, source_person_id)
            WHERE c.cost_event_id IS NULL GROUP BY ALL
        )
        SELECT CAST(person_id AS BIGINT) AS person_id,
               coalesce(v.visits_merged, 0) AS visits_merged, coalesce(e.event_rows, 0) AS event_rows,
               coalesce(e.event_records, 0) AS event_records, coalesce(c.unlinked_costs, 0) AS unlinked_costs
        FROM visits v FULL JOIN events e USING (person_id) FULL JOIN costs c USING (person_id)
        """
    )


def ledger_totals(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """(visits merged, extra event rows, unlinked costs) over everyone."""
    merged, extra, unlinked = con.execute(
        "SELECT coalesce(sum(visits_merged), 0), coalesce(sum(event_rows) - sum(event_records), 0), "
        "coalesce(sum(unlinked_costs), 0) FROM results.reconciliation_by_person"
    ).fetchone()
    return int(merged), int(extra), int(unlinked)
