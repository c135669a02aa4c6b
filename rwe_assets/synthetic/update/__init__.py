"""generate_update(): an update batch for a population generate() wrote, in each source's own semantics.

    OUT_DIR/landing/<source>/update_0001/...   new persons, new events, corrections, retractions
    OUT_DIR/truth/                             new persons' truth, update_changes.csv, report.json

The base is read back from its landing files and truth (nothing is re-simulated): the same seed and
knobs, taken from the base's report.json. New persons are the next chunk(s) of the same simulation
(next chunk numbers, next person ids), so their ids cannot meet the base's. Changes to existing,
living persons follow each source's extract semantics (sources.yaml):

- ehr_site_a (Synthea CSV, snapshot): a touched person's encounters, observations or conditions are
  re-sent whole (a snapshot of that person and entity), with a new encounter and its observations
  appended, one encounter's STOP and one observation's VALUE corrected, or the latest condition and
  observation left out (retired as absent from the newer snapshot).
- ehr_site_b (FHIR R4, incremental): a new Encounter with its Observations; an Observation re-sent
  under its id with meta.versionId 2 and another value; a Condition re-sent as entered-in-error.
- payer (DE-SynPUF, incremental): a refill (new PDE_ID, dated when the last fill runs out); a carrier
  claim re-sent under its CLM_ID with another line payment (adjustment) or with CLM_ADJSMT_TYPE_CD 1
  (void), in a file of its own, `..._Carrier_Claims_Adjustments.csv`, the only one with that column.
- lab: new persons only (their manifest rows and VCF).

Modules: base.py (reading the base back, choosing persons, change rows), synthea_snapshot.py,
fhir_incremental.py, synpuf_incremental.py (each source's changes), batch.py (generate_update).
"""

from rwe_assets.synthetic.update.batch import UpdateReport, generate_update

__all__ = ["UpdateReport", "generate_update"]
