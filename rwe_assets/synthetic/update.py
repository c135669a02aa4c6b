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
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from rwe_assets.errors import ConfigError
from rwe_assets.synthetic import generator as gen
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.formats import synpuf, synthea
from rwe_assets.synthetic.formats.common import csv_header, csv_lines
from rwe_assets.synthetic.util import stream, uuids

CHANGES_COLUMNS = [
    "SOURCE",
    "BATCH",
    "ENTITY",
    "CHANGE",
    "RECORD_ID",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "FIELD",
]
UPDATED_AT = "2025-02-01T00:00:00Z"  # meta.lastUpdated of re-sent FHIR resources
ADJUSTMENTS_FILE = "DE1_0_2016_to_2024_Carrier_Claims_Adjustments.csv"
REFILL_ID_PREFIX = (
    "49"  # PDE ids of refills: '49' + update number (4) + counter (9); chunks use '4' + chunk (5)
)
FHIR_DAY = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class UpdateReport:
    """What generate_update() wrote. Deterministic: no times, no absolute paths."""

    base_persons: int
    seed: int
    batch: str
    fraction: float
    new_persons: int
    first_new_person_id: int
    changes: dict[str, int] = field(default_factory=dict)  # '<source>/<change>' -> records
    resent_rows: dict[str, int] = field(default_factory=dict)  # source -> unchanged rows re-sent
    files: list[gen.FileStats] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(f.rows for f in self.files)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_written"] = self.rows_written
        return out


@dataclass
class _Base:
    dir: Path
    report: dict
    persons: pl.DataFrame  # TRUE_PERSON_ID, DEATH_DATE
    records: pl.DataFrame  # SOURCE, SOURCE_PERSON_ID, TRUE_PERSON_ID, IS_DUPLICATE

    @property
    def compress(self) -> bool:
        return bool(self.report["compress"])

    def files(self, source: str, name: str) -> list[Path]:
        """The landing files of `source` named `name` (plain or .gz), in batch order."""
        folder = self.dir / gen.LANDING_DIR / source
        return sorted(folder.glob(f"*/{name}")) + sorted(folder.glob(f"*/{name}.gz"))


def _read_base(base_dir: Path) -> _Base:
    report_path = base_dir / gen.TRUTH_DIR / "report.json"
    if not report_path.is_file():
        raise ConfigError(f"generate_update: no truth/report.json in {base_dir}: not a generate() output")
    report = json.loads(report_path.read_text())
    persons = pl.read_csv(
        base_dir / gen.TRUTH_DIR / "persons.csv", columns=["TRUE_PERSON_ID", "DEATH_DATE"], infer_schema=False
    )
    records = pl.read_csv(
        base_dir / gen.TRUTH_DIR / "person_records.csv",
        columns=["SOURCE", "SOURCE_PERSON_ID", "TRUE_PERSON_ID", "IS_DUPLICATE"],
        infer_schema=False,
    )
    return _Base(base_dir, report, persons, records)


def _lines(paths: list[Path], header: bool = True) -> pl.Series:
    """Data lines of text files as written (a CSV header dropped), read by polars as one field per
    line (no separator, no quoting): no Python string per line."""
    parts = []
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if header:
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        if not data.strip():
            continue
        frame = pl.read_csv(
            data,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            new_columns=["line"],
            infer_schema=False,
        )
        parts.append(frame["line"].drop_nulls())
    return pl.concat(parts) if parts else pl.Series("line", [], dtype=pl.String)


def _csv_rows(paths: list[Path], columns: list[str]) -> pl.DataFrame:
    """Well-formed rows of CSV files as text columns, in file order (malformed rows, which raw
    quarantines, are left out: re-sending them would correct them)."""
    lines = _lines(paths)
    ok = lines.str.count_matches(",", literal=True) == len(columns) - 1
    return (
        lines.filter(ok)
        .str.split(",")
        .list.to_struct(fields=columns)
        .struct.unnest()
        .with_row_index("_order")
    )


def _to_lines(frame: pl.DataFrame, columns: list[str]) -> bytes:
    if frame.is_empty():
        return b""
    text = frame.select(pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=","))
    return ("\n".join(text.to_series().to_list()) + "\n").encode()


def _shift_times(column: str, days: pl.Expr) -> pl.Expr:
    """Shift Synthea 'YYYY-MM-DDTHH:MM:SSZ' values by whole days, keeping the written form."""
    parsed = pl.col(column).str.strptime(pl.Datetime, FHIR_DAY, strict=False)
    return (parsed + pl.duration(days=days)).dt.strftime(FHIR_DAY).fill_null(pl.col(column))


# --------------------------------------------------------------------------- choosing persons


def _choose(base: _Base, rng: np.random.Generator, fraction: float, source: str) -> dict[str, pl.DataFrame]:
    """Disjoint sets of living persons' first (non-duplicate) records at `source`, per kind of change:
    new events (fraction of the source's records), corrections (half that) and retractions (a
    quarter), at least one each. SOURCE_PERSON_ID, TRUE_PERSON_ID."""
    alive = base.persons.filter(pl.col("DEATH_DATE").fill_null("") == "").select("TRUE_PERSON_ID")
    records = (
        base.records.filter((pl.col("SOURCE") == source) & (pl.col("IS_DUPLICATE").cast(pl.Int8) == 0))
        .join(alive, on="TRUE_PERSON_ID")
        .unique("TRUE_PERSON_ID", keep="first", maintain_order=True)
        .select("SOURCE_PERSON_ID", "TRUE_PERSON_ID")
    )
    n = len(records)
    wanted = {"new_events": fraction * n, "corrections": fraction * n / 2, "retractions": fraction * n / 4}
    shuffled = records[rng.permutation(n)]
    out, start = {}, 0
    for kind, count in wanted.items():
        take = max(1, round(count))
        out[kind] = shuffled.slice(start, take)
        start += take
    return out


def _changes(source: str, batch: str, entity: str, change: str, frame: pl.DataFrame, field_name: str):
    """Rows of truth/update_changes.csv from a frame with RECORD_ID and SOURCE_PERSON_ID."""
    return frame.select(
        pl.lit(source).alias("SOURCE"),
        pl.lit(batch).alias("BATCH"),
        pl.lit(entity).alias("ENTITY"),
        pl.lit(change).alias("CHANGE"),
        pl.col("RECORD_ID"),
        pl.col("SOURCE_PERSON_ID"),
        pl.col("TRUE_PERSON_ID"),
        pl.lit(field_name).alias("FIELD"),
    )


# --------------------------------------------------------------------------- ehr_site_a: Synthea CSV


def _latest(frame: pl.DataFrame, person: str, time: str) -> pl.DataFrame:
    """Each person's latest row by `time` (file order breaks ties), in file order."""
    return frame.sort([time, "_order"]).group_by(person, maintain_order=True).last().sort("_order")


def _site_a(base: _Base, batch: str, fraction: float, rng: np.random.Generator):
    source, h = "ehr_site_a", synthea.HEADERS
    ids = _choose(base, rng, fraction, source)
    enc = _csv_rows(base.files(source, "encounters.csv"), h["encounters"])
    obs = _csv_rows(base.files(source, "observations.csv"), h["observations"])
    cond = _csv_rows(base.files(source, "conditions.csv"), h["conditions"])
    person = {kind: frame.rename({"SOURCE_PERSON_ID": "PATIENT"}) for kind, frame in ids.items()}
    changes = []

    # new events: a copy of the person's latest encounter 1-30 days later, with its observations
    last = _latest(enc.join(person["new_events"], on="PATIENT"), "PATIENT", "START")
    shift = pl.Series("days", rng.integers(1, 31, len(last)), dtype=pl.Int64)
    new_enc = last.with_columns(shift, pl.col("Id").alias("_old"), uuids(rng, len(last)).alias("Id"))
    new_enc = new_enc.with_columns(
        _shift_times("START", pl.col("days")), _shift_times("STOP", pl.col("days"))
    )
    new_obs = obs.join(new_enc.select(pl.col("_old").alias("ENCOUNTER"), "Id", "days"), on="ENCOUNTER")
    new_obs = new_obs.with_columns(pl.col("Id").alias("ENCOUNTER"), _shift_times("DATE", pl.col("days")))
    changes.append(_changes(source, batch, "encounters", "new_event", _ids(new_enc, "Id", "PATIENT"), ""))
    obs_key = pl.concat_str(["PATIENT", "ENCOUNTER", "CODE", "DATE"], separator="|")
    changes.append(
        _changes(source, batch, "observations", "new_event", _ids(new_obs, obs_key, "PATIENT", new_enc), "")
    )

    # corrections: the latest encounter ends 30 minutes later; the latest numeric observation's VALUE
    fixed = person["corrections"]
    stop_fix = _latest(enc.join(fixed, on="PATIENT"), "PATIENT", "START").select("_order")
    value = pl.col("VALUE").cast(pl.Float64, strict=False)
    numeric = obs.join(fixed, on="PATIENT").filter(value.is_not_null() & (pl.col("TYPE") == "numeric"))
    value_fix = _latest(numeric, "PATIENT", "DATE").select("_order")
    enc_out = enc.join(pl.concat([person["new_events"], fixed]), on="PATIENT").with_columns(
        pl.when(pl.col("_order").is_in(stop_fix["_order"].implode()))
        .then(_shift_minutes("STOP", 30))
        .otherwise(pl.col("STOP"))
        .alias("STOP")
    )
    obs_out = obs.join(pl.concat([person["new_events"], fixed]), on="PATIENT").with_columns(
        pl.when(pl.col("_order").is_in(value_fix["_order"].implode()))
        .then((value * 1.05 + 0.1).round(1).cast(pl.String))
        .otherwise(pl.col("VALUE"))
        .alias("VALUE")
    )
    corrected_enc = enc_out.filter(pl.col("_order").is_in(stop_fix["_order"].implode()))
    corrected_obs = obs_out.filter(pl.col("_order").is_in(value_fix["_order"].implode()))
    changes.append(
        _changes(source, batch, "encounters", "correction", _ids(corrected_enc, "Id", "PATIENT"), "STOP")
    )
    changes.append(
        _changes(
            source, batch, "observations", "correction", _ids(corrected_obs, obs_key, "PATIENT"), "VALUE"
        )
    )

    # retractions: the person's conditions and observations re-sent without the latest of each
    # (absent from the newer snapshot); a sole condition is kept, or the person would leave the file
    held_cond = cond.join(person["retractions"], on="PATIENT").filter(pl.len().over("PATIENT") >= 2)
    held_obs = obs.join(person["retractions"], on="PATIENT").filter(pl.len().over("PATIENT") >= 2)
    cond_out, dropped_cond = _without_latest(held_cond, "START")
    retracted_obs, dropped_obs = _without_latest(held_obs, "DATE")
    obs_out = pl.concat([obs_out, retracted_obs])
    cond_key = pl.concat_str(["PATIENT", "ENCOUNTER", "CODE", "START"], separator="|")
    changes.append(
        _changes(source, batch, "conditions", "retraction", _ids(dropped_cond, cond_key, "PATIENT"), "")
    )
    changes.append(
        _changes(source, batch, "observations", "retraction", _ids(dropped_obs, obs_key, "PATIENT"), "")
    )

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
    out = {(source, key): (_to_lines(frame, columns), len(frame)) for key, (frame, columns) in pieces.items()}
    return out, changes, resent


def _without_latest(frame: pl.DataFrame, time: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows but each person's latest, those latest rows)."""
    dropped = _latest(frame, "PATIENT", time)
    return frame.filter(~pl.col("_order").is_in(dropped["_order"].implode())), dropped


def _ids(frame: pl.DataFrame, record: str | pl.Expr, person: str, owner: pl.DataFrame | None = None):
    """RECORD_ID, SOURCE_PERSON_ID, TRUE_PERSON_ID of changed rows (TRUE_PERSON_ID from `owner`)."""
    record = pl.col(record) if isinstance(record, str) else record
    if "TRUE_PERSON_ID" not in frame.columns and owner is not None:
        frame = frame.join(
            owner.select(pl.col("PATIENT").alias(person), "TRUE_PERSON_ID").unique(), on=person
        )
    return frame.select(
        record.alias("RECORD_ID"), pl.col(person).alias("SOURCE_PERSON_ID"), pl.col("TRUE_PERSON_ID")
    )


def _shift_minutes(column: str, minutes: int) -> pl.Expr:
    parsed = pl.col(column).str.strptime(pl.Datetime, FHIR_DAY, strict=False)
    return (parsed + pl.duration(minutes=minutes)).dt.strftime(FHIR_DAY).fill_null(pl.col(column))


# --------------------------------------------------------------------------- ehr_site_b: FHIR R4


def _resources(base: _Base, resource_type: str) -> pl.DataFrame:
    """NDJSON lines of one resource type with their patient and encounter ids and first time."""
    lines = _lines(base.files("ehr_site_b", f"{resource_type}.000.ndjson"), header=False)
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


def _fhir_edit(lines: pl.DataFrame, edit) -> tuple[list[str], list[dict]]:
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


def _fhir_shift(value: str, days: int) -> str:
    try:
        if len(value) == 10:
            return (datetime.strptime(value, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")
        return (datetime.strptime(value, FHIR_DAY) + timedelta(days=days)).strftime(FHIR_DAY)
    except ValueError:
        return value  # an invalid date stays as it was (staging quarantines it)


def _new_version(resource: dict) -> None:
    meta = resource.setdefault("meta", {})
    meta["versionId"] = str(int(meta.get("versionId", "1")) + 1)
    meta["lastUpdated"] = UPDATED_AT


def _site_b(base: _Base, batch: str, fraction: float, rng: np.random.Generator):
    source = "ehr_site_b"
    ids = {
        k: f.rename({"SOURCE_PERSON_ID": "patient"}) for k, f in _choose(base, rng, fraction, source).items()
    }
    enc, obs, cond = (_resources(base, t) for t in ("Encounter", "Observation", "Condition"))
    changes = []

    # new events: the latest Encounter again, 1-30 days later, under a new id, with its Observations
    last = _latest(enc.join(ids["new_events"], on="patient"), "patient", "time")
    last = last.with_columns(
        pl.Series("days", rng.integers(1, 31, len(last)), dtype=pl.Int64),
        uuids(rng, len(last)).alias("new_id"),
    )
    children = obs.join(
        last.select(
            "patient",
            "TRUE_PERSON_ID",
            "days",
            "new_id",
            pl.col("line").str.extract(r'"id":"([^"]+)"', 1).alias("encounter"),
        ),
        on=["patient", "encounter"],
    )
    children = children.with_columns(uuids(rng, len(children)).alias("child_id"))

    def encounter(resource, row):
        resource["id"] = row["new_id"]
        for identifier in resource.get("identifier", []):
            identifier["value"] = row["new_id"]
        for holder in [resource, *resource.get("participant", [])]:
            if "period" in holder:
                holder["period"] = {k: _fhir_shift(v, row["days"]) for k, v in holder["period"].items()}

    def observation(resource, row):
        resource["id"] = row["child_id"]
        resource["encounter"]["reference"] = f"Encounter/{row['new_id']}"
        for key in ("effectiveDateTime", "issued"):
            if key in resource:
                resource[key] = _fhir_shift(resource[key], row["days"])

    new_enc, enc_rows = _fhir_edit(last, encounter)
    new_obs, obs_rows = _fhir_edit(children, observation)

    # corrections: the latest Observation with a quantity, version 2 with another value
    quantity = obs.filter(pl.col("line").str.contains('"valueQuantity":{"value":', literal=True))
    latest_obs = _latest(quantity.join(ids["corrections"], on="patient"), "patient", "time")

    def corrected(resource, row):
        value = resource["valueQuantity"]["value"]
        resource["valueQuantity"]["value"] = round(value * 1.05 + 0.1, 1)
        _new_version(resource)

    fixed_obs, fixed_rows = _fhir_edit(latest_obs, corrected)

    # retractions: the latest Condition re-sent as entered-in-error (no clinicalStatus then, con-5)
    latest_cond = _latest(cond.join(ids["retractions"], on="patient"), "patient", "time")

    def retracted(resource, row):
        resource.pop("clinicalStatus", None)
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        }
        _new_version(resource)

    retracted_cond, retracted_rows = _fhir_edit(latest_cond, retracted)
    for entity, change, rows, field_name in (
        ("encounter", "new_event", enc_rows, ""),
        ("observation", "new_event", obs_rows, ""),
        ("observation", "correction", fixed_rows, "valueQuantity.value"),
        ("condition", "retraction", retracted_rows, "verificationStatus"),
    ):
        frame = pl.DataFrame(
            {
                "RECORD_ID": [r["RECORD_ID"] for r in rows],
                "SOURCE_PERSON_ID": [r["patient"] for r in rows],
                "TRUE_PERSON_ID": [r.get("TRUE_PERSON_ID") for r in rows],
            },
            schema={"RECORD_ID": pl.String, "SOURCE_PERSON_ID": pl.String, "TRUE_PERSON_ID": pl.String},
        )
        changes.append(_changes(source, batch, entity, change, frame, field_name))
    out = {
        (source, "Encounter"): new_enc,
        (source, "Observation"): new_obs + fixed_obs,
        (source, "Condition"): retracted_cond,
    }
    return {k: (("\n".join(v) + "\n").encode() if v else b"", len(v)) for k, v in out.items()}, changes, 0


# --------------------------------------------------------------------------- payer: DE-SynPUF


def _payer(base: _Base, batch: str, fraction: float, rng: np.random.Generator, number: int):
    source = "payer"
    ids = {
        k: f.rename({"SOURCE_PERSON_ID": "DESYNPUF_ID"})
        for k, f in _choose(base, rng, fraction, source).items()
    }
    pde_columns, carrier_columns = (
        synpuf.FILES["prescription_drug_events"][1],
        synpuf.FILES["carrier_claims"][1],
    )
    pde = _csv_rows(base.files(source, synpuf.FILES["prescription_drug_events"][0]), pde_columns)
    carrier = _csv_rows(base.files(source, synpuf.FILES["carrier_claims"][0]), carrier_columns)
    changes = []

    # new events: a refill of the latest fill, dated when its days of supply run out
    served = pl.col("SRVC_DT").str.strptime(pl.Date, "%Y%m%d", strict=False)
    supply = pl.col("DAYS_SUPLY_NUM").cast(pl.Int64, strict=False)
    fills = pde.join(ids["new_events"], on="DESYNPUF_ID").filter(served.is_not_null() & supply.is_not_null())
    refill = _latest(fills, "DESYNPUF_ID", "SRVC_DT")
    counter = pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.String).str.zfill(9)
    refill = refill.with_columns(
        (pl.lit(f"{REFILL_ID_PREFIX}{number:04d}") + counter).alias("PDE_ID"),
        (served + pl.duration(days=supply)).dt.strftime("%Y%m%d").alias("SRVC_DT"),
    )
    changes.append(
        _changes(
            source, batch, "prescription_drug_events", "new_event", _ids(refill, "PDE_ID", "DESYNPUF_ID"), ""
        )
    )

    # adjustments (another line payment) and voids (CLM_ADJSMT_TYPE_CD 1) of the latest carrier claim
    adjusted = _latest(carrier.join(ids["corrections"], on="DESYNPUF_ID"), "DESYNPUF_ID", "CLM_FROM_DT")
    paid = pl.col("LINE_NCH_PMT_AMT_1").cast(pl.Int64, strict=False)
    adjusted = adjusted.filter(paid.is_not_null()).with_columns(
        (paid + 10).cast(pl.String).alias("LINE_NCH_PMT_AMT_1"), pl.lit("").alias("CLM_ADJSMT_TYPE_CD")
    )
    voided = _latest(carrier.join(ids["retractions"], on="DESYNPUF_ID"), "DESYNPUF_ID", "CLM_FROM_DT")
    voided = voided.with_columns(pl.lit("1").alias("CLM_ADJSMT_TYPE_CD"))
    changes.append(
        _changes(
            source,
            batch,
            "carrier_claims",
            "adjustment",
            _ids(adjusted, "CLM_ID", "DESYNPUF_ID"),
            "LINE_NCH_PMT_AMT_1",
        )
    )
    changes.append(
        _changes(
            source,
            batch,
            "carrier_claims",
            "void",
            _ids(voided, "CLM_ID", "DESYNPUF_ID"),
            "CLM_ADJSMT_TYPE_CD",
        )
    )
    adjust_columns = [*carrier_columns, "CLM_ADJSMT_TYPE_CD"]
    both = pl.concat([adjusted, voided]).select(adjust_columns)
    out = {
        (source, "prescription_drug_events"): (_to_lines(refill, pde_columns), len(refill)),
        (source, "carrier_claims_adjustments"): (_to_lines(both, adjust_columns), len(both)),
    }
    return out, changes, 0


# --------------------------------------------------------------------------- writing


def _file_of(source: str, key: str, compress: bool) -> tuple[str, str, bytes]:
    if key == "carrier_claims_adjustments":
        columns = [*synpuf.FILES["carrier_claims"][1], "CLM_ADJSMT_TYPE_CD"]
        name = ADJUSTMENTS_FILE + (".gz" if compress else "")
        return name, "carrier_claims", csv_header(columns, quoted=True)
    return gen._landing_name(source, key, compress)


def _append(
    out: Path, batch: str, key: tuple[str, str], data: bytes, rows: int, sinks, stats, compress
) -> None:
    """Append lines to a landing file of the update batch, opening it (with its header) if needed."""
    if rows == 0:
        return
    source, name_key = key
    ident = (source, batch, name_key)
    if ident not in sinks:
        name, entity, header = _file_of(source, name_key, compress)
        path = out / gen.LANDING_DIR / source / batch / name
        sinks[ident] = gen._Sink(path, header, compress)
        stats[ident] = gen.FileStats(source, batch, entity, path.relative_to(out).as_posix())
    stats[ident].bytes += sinks[ident].write(gen._gzip(data) if compress else data)
    stats[ident].rows += rows


def _new_person_plan(
    base: _Base, n_new: int, number: int, batch: str
) -> list[tuple[int, str, int, int, bool]]:
    """Chunks of the new persons: numbered after the base's chunks, ids after its persons. Update k takes
    the k-th block of as many ids (and chunks) as the base has, whatever the fractions of the updates
    before it (a fraction is at most 1), so two updates never share an id."""
    report = base.report
    persons, chunk = int(report["persons"]), int(report["chunk_size"])
    base_chunks = len(gen._plan(persons, len(report["batches"]), chunk))
    first_chunk = base_chunks + (number - 1) * math.ceil(persons / chunk)
    first_pid = persons + 1 + (number - 1) * persons
    return [
        (first_chunk + i, batch, first_pid + lo, min(chunk, n_new - lo), i == 0)
        for i, lo in enumerate(range(0, n_new, chunk))
    ]


def generate_update(
    base_dir: str | Path,
    out_dir: str | Path,
    fraction: float = 0.01,
    *,
    number: int = 1,
    workers: int = 1,
) -> UpdateReport:
    """Write update batch `update_<number>` for the population generate() wrote into base_dir:
    fraction x persons new persons; per source, fraction x its persons with new events, half as many
    with corrections and a quarter with retractions (living persons, at least one each). The output
    folder must be empty."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"generate_update: expected a fraction in (0, 1], found {fraction}")
    if number < 1:
        raise ConfigError(f"generate_update: expected an update number of at least 1, found {number}")
    base, out = _read_base(Path(base_dir)), Path(out_dir)
    batch = f"update_{number:04d}"
    if batch in base.report["batches"]:
        raise ConfigError(f"generate_update: the base already has a batch {batch}")
    for folder in (out / gen.LANDING_DIR, out / gen.TRUTH_DIR):
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"generate_update: expected an empty output folder, found files in {folder}")
    seed, persons, compress = int(base.report["seed"]), int(base.report["persons"]), base.compress
    config = NoiseConfig(**base.report["config"])
    n_new = max(1, round(fraction * persons))
    plan = _new_person_plan(base, n_new, number, batch)
    report = UpdateReport(persons, seed, batch, fraction, n_new, plan[0][2])
    new_report = gen.GenerationReport(
        n_new, seed, [batch], base.report["chunk_size"], compress, config.as_dict()
    )
    truth = out / gen.TRUTH_DIR
    sinks, stats = {}, {}
    truth_sinks = {
        "persons": gen._Sink(truth / "persons.csv", csv_header(gen.PERSONS_COLUMNS), False),
        "person_records": gen._Sink(truth / "person_records.csv", csv_header(gen.RECORDS_COLUMNS), False),
        "lab_samples": gen._Sink(truth / "lab_samples.csv", csv_header(gen.SAMPLES_COLUMNS), False),
        "genotypes": gen._Sink(truth / "genotypes.csv", csv_header(gen.GENOTYPE_COLUMNS), False),
    }
    try:
        for result in gen._results(seed, plan, config, workers, compress):
            gen.write_result(out, result, sinks, stats, truth_sinks, new_report, compress)
        rng = stream(seed, f"update_{number}")
        all_changes = []
        for name, (pieces, changes, resent) in (
            ("ehr_site_a", _site_a(base, batch, fraction, rng)),
            ("ehr_site_b", _site_b(base, batch, fraction, rng)),
            ("payer", _payer(base, batch, fraction, rng, number)),
        ):
            for key, (data, rows) in pieces.items():
                _append(out, batch, key, data, rows, sinks, stats, compress)
            report.resent_rows[name] = resent
            all_changes.extend(changes)
    finally:
        for sink in [*sinks.values(), *truth_sinks.values()]:
            sink.close()
    changes = pl.concat(all_changes)
    for source, change, count in (
        changes.group_by("SOURCE", "CHANGE").len().sort("SOURCE", "CHANGE").iter_rows()
    ):
        report.changes[f"{source}/{change}"] = count
    (truth / "update_changes.csv").write_bytes(csv_header(CHANGES_COLUMNS) + csv_lines(changes))
    report.files = [stats[k] for k in sorted(stats)]
    gen._write_counts(truth / "expected_counts.csv", report.files)
    (truth / "report.json").write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    return report
