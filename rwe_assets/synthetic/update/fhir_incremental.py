"""ehr_site_b (FHIR R4, incremental): a new Encounter with its Observations; an Observation re-sent
under its id with meta.versionId 2 and another value; a Condition re-sent as entered-in-error."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from rwe_assets.synthetic.update.base import FHIR_DAY, Base, change_rows, choose, landing_lines, latest
from rwe_assets.synthetic.util import uuids

UPDATED_AT = "2025-02-01T00:00:00Z"  # meta.lastUpdated of re-sent FHIR resources


def resources(base: Base, resource_type: str) -> pl.DataFrame:
    """NDJSON lines of one resource type with their patient and encounter ids and first time."""
    lines = landing_lines(base.files("ehr_site_b", f"{resource_type}.000.ndjson"), header=False)
    return (
        pl.DataFrame(lines)
        .with_row_index("_order")
        .with_columns(
            pl.col("line").str.extract(r'"subject":\{"reference":"Patient/([^"]+)"', 1).alias("patient"),
            pl.col("line")
            .str.extract(r'"encounter":\{"reference":"Encounter/([^"]+)"', 1)
            .alias("encounter"),
            pl.col("line")
            .str.extract(r'"(?:start|effectiveDateTime|recordedDate)":"([^"]+)"', 1)
            .alias("time"),
        )
    )


def fhir_edit(lines: pl.DataFrame, edit) -> tuple[list[str], list[dict]]:
    """Apply edit(resource, row) to each line; lines that are not JSON (a cut line) are skipped."""
    out, edited = [], []
    for row in lines.iter_rows(named=True):  # a few rows per touched person
        try:
            resource = json.loads(row["line"])
        except json.JSONDecodeError:
            continue
        edit(resource, row)
        out.append(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
        edited.append({**row, "RECORD_ID": f"{resource['resourceType']}/{resource['id']}"})
    return out, edited


def fhir_shift(value: str, days: int) -> str:
    try:
        if len(value) == 10:
            return (datetime.strptime(value, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")
        return (datetime.strptime(value, FHIR_DAY) + timedelta(days=days)).strftime(FHIR_DAY)
    except ValueError:
        return value  # an invalid date stays as it was (staging quarantines it)


def new_version(resource: dict) -> None:
    meta = resource.setdefault("meta", {})
    meta["versionId"] = str(int(meta.get("versionId", "1")) + 1)
    meta["lastUpdated"] = UPDATED_AT


SOURCE = "ehr_site_b"
ENTERED_IN_ERROR = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}
    ]
}


def _as_new_encounter(resource: dict, row: dict) -> None:
    resource["id"] = row["new_id"]
    for identifier in resource.get("identifier", []):
        identifier["value"] = row["new_id"]
    for holder in [resource, *resource.get("participant", [])]:
        if "period" in holder:
            holder["period"] = {k: fhir_shift(v, row["days"]) for k, v in holder["period"].items()}


def _as_new_observation(resource: dict, row: dict) -> None:
    resource["id"] = row["child_id"]
    resource["encounter"]["reference"] = f"Encounter/{row['new_id']}"
    for key in ("effectiveDateTime", "issued"):
        if key in resource:
            resource[key] = fhir_shift(resource[key], row["days"])


def _corrected(resource: dict, row: dict) -> None:
    value = resource["valueQuantity"]["value"]
    resource["valueQuantity"]["value"] = round(value * 1.05 + 0.1, 1)
    new_version(resource)


def _retracted(resource: dict, row: dict) -> None:
    """Entered-in-error, without clinicalStatus (FHIR's con-5)."""
    resource.pop("clinicalStatus", None)
    resource["verificationStatus"] = ENTERED_IN_ERROR
    new_version(resource)


def _new_events(enc: pl.DataFrame, obs: pl.DataFrame, persons: pl.DataFrame, rng: np.random.Generator):
    """The latest Encounter again, 1-30 days later, under a new id, with its Observations:
    (encounter lines, their rows, observation lines, their rows)."""
    last = latest(enc.join(persons, on="patient"), "patient", "time")
    last = last.with_columns(
        pl.Series("days", rng.integers(1, 31, len(last)), dtype=pl.Int64),
        uuids(rng, len(last)).alias("new_id"),
    )
    encounter_id = pl.col("line").str.extract(r'"id":"([^"]+)"', 1).alias("encounter")
    children = obs.join(
        last.select("patient", "TRUE_PERSON_ID", "days", "new_id", encounter_id), on=["patient", "encounter"]
    )
    children = children.with_columns(uuids(rng, len(children)).alias("child_id"))
    return (*fhir_edit(last, _as_new_encounter), *fhir_edit(children, _as_new_observation))


def _change_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "RECORD_ID": [r["RECORD_ID"] for r in rows],
            "SOURCE_PERSON_ID": [r["patient"] for r in rows],
            "TRUE_PERSON_ID": [r.get("TRUE_PERSON_ID") for r in rows],
        },
        schema={"RECORD_ID": pl.String, "SOURCE_PERSON_ID": pl.String, "TRUE_PERSON_ID": pl.String},
    )


def site_b_changes(base: Base, batch: str, fraction: float, rng: np.random.Generator):
    """(landing lines by (source, resource type), change rows, unchanged rows re-sent: none)."""
    ids = {
        k: f.rename({"SOURCE_PERSON_ID": "patient"}) for k, f in choose(base, rng, fraction, SOURCE).items()
    }
    enc, obs, cond = (resources(base, t) for t in ("Encounter", "Observation", "Condition"))
    new_enc, enc_rows, new_obs, obs_rows = _new_events(enc, obs, ids["new_events"], rng)
    # corrections: the latest Observation with a quantity, version 2 with another value
    quantity = obs.filter(pl.col("line").str.contains('"valueQuantity":{"value":', literal=True))
    latest_obs = latest(quantity.join(ids["corrections"], on="patient"), "patient", "time")
    fixed_obs, fixed_rows = fhir_edit(latest_obs, _corrected)
    # retractions: the latest Condition re-sent as entered-in-error
    latest_cond = latest(cond.join(ids["retractions"], on="patient"), "patient", "time")
    retracted_cond, retracted_rows = fhir_edit(latest_cond, _retracted)
    changes = [
        change_rows(SOURCE, batch, entity, change, _change_frame(rows), field_name)
        for entity, change, rows, field_name in (
            ("encounter", "new_event", enc_rows, ""),
            ("observation", "new_event", obs_rows, ""),
            ("observation", "correction", fixed_rows, "valueQuantity.value"),
            ("condition", "retraction", retracted_rows, "verificationStatus"),
        )
    ]
    out = {
        (SOURCE, "Encounter"): new_enc,
        (SOURCE, "Observation"): new_obs + fixed_obs,
        (SOURCE, "Condition"): retracted_cond,
    }
    return {k: (("\n".join(v) + "\n").encode() if v else b"", len(v)) for k, v in out.items()}, changes, 0
