"""ehr_site_a (Synthea CSV, a snapshot): a touched person's encounters, observations or conditions
are re-sent whole (a snapshot of that person and entity), with a new encounter and its
observations appended, one encounter's STOP and one observation's VALUE corrected, or the latest
condition and observation left out (retired as absent from the newer snapshot)."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.synthea import HEADERS
from rwe_assets.synthetic.update.base import (
    Base,
    change_rows,
    changed_ids,
    choose,
    csv_rows,
    latest,
    shifted,
    to_lines,
)
from rwe_assets.synthetic.util import uuids

SOURCE = "ehr_site_a"
OBS_KEY = pl.concat_str(["PATIENT", "ENCOUNTER", "CODE", "DATE"], separator="|")  # natural keys
COND_KEY = pl.concat_str(["PATIENT", "ENCOUNTER", "CODE", "START"], separator="|")


def _new_events(enc, obs, persons: pl.DataFrame, rng: np.random.Generator, batch: str):
    """A copy of each person's latest encounter 1-30 days later under a new Id, with its
    observations: (encounters, observations, change rows)."""
    last = latest(enc.join(persons, on="PATIENT"), "PATIENT", "START")
    shift = pl.Series("days", rng.integers(1, 31, len(last)), dtype=pl.Int64)
    new_enc = last.with_columns(shift, pl.col("Id").alias("_old"), uuids(rng, len(last)).alias("Id"))
    new_enc = new_enc.with_columns(
        shifted("START", days=pl.col("days")), shifted("STOP", days=pl.col("days"))
    )
    new_obs = obs.join(new_enc.select(pl.col("_old").alias("ENCOUNTER"), "Id", "days"), on="ENCOUNTER")
    new_obs = new_obs.with_columns(pl.col("Id").alias("ENCOUNTER"), shifted("DATE", days=pl.col("days")))
    changes = [
        change_rows(SOURCE, batch, "encounters", "new_event", changed_ids(new_enc, "Id", "PATIENT"), ""),
        change_rows(
            SOURCE, batch, "observations", "new_event", changed_ids(new_obs, OBS_KEY, "PATIENT", new_enc), ""
        ),
    ]
    return new_enc, new_obs, changes


def _corrections(enc, obs, touched: pl.DataFrame, fixed: pl.DataFrame, batch: str):
    """The touched persons' encounters and observations re-sent, with the latest encounter of each
    `fixed` person ending 30 minutes later and their latest numeric observation's VALUE x 1.05 +
    0.1: (encounters, observations, corrected encounters, corrected observations, change rows)."""
    stop_fix = latest(enc.join(fixed, on="PATIENT"), "PATIENT", "START")["_order"].implode()
    value = pl.col("VALUE").cast(pl.Float64, strict=False)
    numeric = obs.join(fixed, on="PATIENT").filter(value.is_not_null() & (pl.col("TYPE") == "numeric"))
    value_fix = latest(numeric, "PATIENT", "DATE")["_order"].implode()
    stop = (
        pl.when(pl.col("_order").is_in(stop_fix)).then(shifted("STOP", minutes=30)).otherwise(pl.col("STOP"))
    )
    enc_out = enc.join(touched, on="PATIENT").with_columns(stop.alias("STOP"))
    new_value = (value * 1.05 + 0.1).round(1).cast(pl.String)
    obs_out = obs.join(touched, on="PATIENT").with_columns(
        pl.when(pl.col("_order").is_in(value_fix)).then(new_value).otherwise(pl.col("VALUE")).alias("VALUE")
    )
    corrected_enc = enc_out.filter(pl.col("_order").is_in(stop_fix))
    corrected_obs = obs_out.filter(pl.col("_order").is_in(value_fix))
    changes = [
        change_rows(
            SOURCE, batch, "encounters", "correction", changed_ids(corrected_enc, "Id", "PATIENT"), "STOP"
        ),
        change_rows(
            SOURCE,
            batch,
            "observations",
            "correction",
            changed_ids(corrected_obs, OBS_KEY, "PATIENT"),
            "VALUE",
        ),
    ]
    return enc_out, obs_out, corrected_enc, corrected_obs, changes


def _retractions(cond, obs, persons: pl.DataFrame, batch: str):
    """The persons' conditions and observations re-sent without the latest of each (absent from the
    newer snapshot); a sole condition is kept, or the person would leave the file:
    (conditions, observations, change rows)."""
    held_cond = cond.join(persons, on="PATIENT").filter(pl.len().over("PATIENT") >= 2)
    held_obs = obs.join(persons, on="PATIENT").filter(pl.len().over("PATIENT") >= 2)
    cond_out, dropped_cond = _without_latest(held_cond, "START")
    obs_out, dropped_obs = _without_latest(held_obs, "DATE")
    changes = [
        change_rows(
            SOURCE, batch, "conditions", "retraction", changed_ids(dropped_cond, COND_KEY, "PATIENT"), ""
        ),
        change_rows(
            SOURCE, batch, "observations", "retraction", changed_ids(dropped_obs, OBS_KEY, "PATIENT"), ""
        ),
    ]
    return cond_out, obs_out, changes


def site_a_changes(base: Base, batch: str, fraction: float, rng: np.random.Generator):
    """(landing lines by (source, entity), change rows, unchanged rows re-sent)."""
    h = HEADERS
    ids = choose(base, rng, fraction, SOURCE)
    enc = csv_rows(base.files(SOURCE, "encounters.csv"), h["encounters"])
    obs = csv_rows(base.files(SOURCE, "observations.csv"), h["observations"])
    cond = csv_rows(base.files(SOURCE, "conditions.csv"), h["conditions"])
    person = {kind: frame.rename({"SOURCE_PERSON_ID": "PATIENT"}) for kind, frame in ids.items()}
    new_enc, new_obs, new_changes = _new_events(enc, obs, person["new_events"], rng, batch)
    touched = pl.concat([person["new_events"], person["corrections"]])
    enc_out, obs_out, corrected_enc, corrected_obs, fixes = _corrections(
        enc, obs, touched, person["corrections"], batch
    )
    cond_out, retracted_obs, retractions = _retractions(cond, obs, person["retractions"], batch)
    obs_out = pl.concat([obs_out, retracted_obs])
    resent = len(enc_out) - len(corrected_enc) + len(obs_out) - len(corrected_obs) + len(cond_out)
    pieces = {
        "encounters": (
            pl.concat([enc_out.select(h["encounters"]), new_enc.select(h["encounters"])]),
            h["encounters"],
        ),
        "observations": (
            pl.concat([obs_out.select(h["observations"]), new_obs.select(h["observations"])]),
            h["observations"],
        ),
        "conditions": (cond_out, h["conditions"]),
    }
    out = {(SOURCE, key): (to_lines(frame, columns), len(frame)) for key, (frame, columns) in pieces.items()}
    return out, [*new_changes, *fixes, *retractions], resent


def _without_latest(frame: pl.DataFrame, time: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows but each person's latest, those latest rows)."""
    dropped = latest(frame, "PATIENT", time)
    return frame.filter(~pl.col("_order").is_in(dropped["_order"].implode())), dropped
