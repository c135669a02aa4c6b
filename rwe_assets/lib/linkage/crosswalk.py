"""The master patient index: staging.person_pii -> linkage tables -> person_crosswalk.

Contract (unchanged from the interim exact-token crosswalk): `linkage/person_crosswalk` maps
(source_system, source_person_id) -> person_id (BIGINT) with match_method (deterministic /
probabilistic / singleton / clerical), match_probability and first_seen_batch; a person id, once
given, is never renumbered: a later run only adds persons or merges them (both recorded in
linkage/person_history), or splits one when a link is withdrawn (recorded too).

One run: tokens for every record (tokens.py); the model is trained once and kept (model.py,
linkage/model.json); records that are new or whose tokens changed are scored against each other and
against the unchanged records; the kept pairs of unchanged records are reused (so a batch costs its
own comparisons, and the clusters equal those of a full relink with the same model); decisions and
connected components (cluster.py); stable ids; quality (quality.py). See docs/linkage.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.linkage import cluster, model, quality
from rwe_assets.lib.linkage.keys import DEMO_KEY
from rwe_assets.lib.linkage.tokens import BLOOM_COLUMNS, LIST_COLUMNS, TOKEN_COLUMNS, build_tokens

__all__ = ["DEMO_KEY", "LinkageResult", "build_crosswalk", "link", "register_staged_persons", "tokenize"]

WRITE_BATCH_ROWS = 200_000
TABLES = ("tokens", "pairs", "person_crosswalk", "clerical_review", "person_history", "metrics")
MODEL_FILE = "model.json"  # the fitted Fellegi-Sunter model, beside the linkage tables


@dataclass
class LinkageResult:
    crosswalk: pa.Table
    metrics: pa.Table
    counts: dict[str, float]
    trained: bool

    def metric(self, name: str, dimension: str = "") -> float | None:
        for m, d, v in zip(
            *(self.metrics.column(c).to_pylist() for c in ("metric", "dimension", "value")), strict=True
        ):
            if m == name and d == dimension:
                return v
        return None


def register_staged_persons(con: duckdb.DuckDBPyConnection, lake_dir: Path, name: str = "person_pii") -> None:
    """View `name`: every staged person (staging.person_source) with its identifiers from
    staging.person_pii, NULL where the source sent none (real DE-SynPUF has no member file): such a
    record gets no token, matches nothing and becomes a person of its own, so every staged person has
    a person_id."""
    for table in ("person_source", "person_pii"):
        if not lake.register_view(con, f"_staged_{table}", lake.table_path(lake_dir, "staging", table)):
            raise FileNotFoundError(
                f"staging/{table} does not exist yet: materialize the staging assets first"
            )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {name} AS
        SELECT s.source_system, s.source_person_id, coalesce(p._batch_id, s._batch_id) AS _batch_id,
               p.* EXCLUDE (source_system, source_person_id, _batch_id)
        FROM _staged_person_source s
        LEFT JOIN _staged_person_pii p USING (source_system, source_person_id)
        """
    )


def build_crosswalk(con: duckdb.DuckDBPyConnection, lake_dir: Path, key: str, **options) -> pa.Table:
    """Link staging.person_pii (registered in `con` as `person_pii`) into lake/linkage/* and return
    the crosswalk. Options: see link()."""
    return link(con, lake_dir, key, **options).crosswalk


def link(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    key: str,
    *,
    truth_dir: Path | None = None,
    retrain: bool = False,
    relink: bool = False,
    today: dt.date | None = None,
    deduplicated: tuple[str, ...] = (),
) -> LinkageResult:
    """retrain: fit the model again (then every pair is rescored); relink: rescore every pair with the
    kept model; truth_dir: ground truth for precision/recall/F1 (quality.register_generator_truth);
    deduplicated: sources whose records are distinct people (sources.yaml `deduplicated`)."""
    linkage_dir = lake.table_path(lake_dir, "linkage")
    records = tokenize(con, key, today)
    model.term_frequencies(con, "lk_tokens")  # over every record of this run, old and new alike
    model.register_input(con, "lk_tokens")  # the Dice macro, also used by the household guard
    settings, trained_now = _model(con, linkage_dir, records, retrain)
    previous_tokens = lake.read_table(linkage_dir / "tokens", columns=["record_id", "fingerprint"])
    previous_pairs = lake.read_table(linkage_dir / "pairs")
    full = trained_now or relink or previous_tokens is None or previous_pairs is None
    _split_new(con, None if full else previous_tokens)
    has_old = con.execute("SELECT count(*) FROM lk_tokens_old").fetchone()[0] > 0
    new_count = con.execute("SELECT count(*) FROM lk_tokens_new").fetchone()[0]
    _score(con, settings, has_old, new_count)
    if trained_now and settings["trained"]:
        settings = model.refine_prior(con, settings, records)
        model.save(settings, linkage_dir / MODEL_FILE)
    cluster.decide(con, lake.read_table(linkage_dir / "clerical_decisions"))
    _merge_pairs(con, None if full else previous_pairs)
    cluster.add_decided_pairs(con)
    rounds = cluster.connected_components(con, deduplicated)
    cluster.assign_person_ids(con, lake.read_table(linkage_dir / "person_crosswalk"))
    truth = truth_dir is not None and quality.register_generator_truth(con, truth_dir)
    counts = _counts(con, records, new_count, full, rounds)
    metrics = quality.metrics_table(con, counts, truth)
    crosswalk = con.sql("SELECT * FROM lk_crosswalk").to_arrow_table()
    _write(con, linkage_dir, crosswalk, metrics)
    return LinkageResult(crosswalk, metrics, counts, trained_now)


def tokenize(con: duckdb.DuckDBPyConnection, key: str, today: dt.date | None = None) -> int:
    """TEMP TABLE lk_tokens from `person_pii` with each record's fingerprint (a hash of its
    key-dependent tokens: a record is new to a run when its fingerprint was not seen); returns the
    number of records. Also used by `rwe rotate-key` (rotate.py) to re-key the stored fingerprints."""
    build_tokens(con, key, today)
    # DuckDB's hash of the columns (60 bits, like the k_* keys), not an md5 of their text: 1.33 against
    # 0.17 CPU s at 100,000 records. A DuckDB upgrade that changed hash() would make every record new
    # once (rescored, same pairs).
    con.execute(
        f"ALTER TABLE lk_tokens ADD COLUMN fingerprint BIGINT DEFAULT NULL; UPDATE lk_tokens SET fingerprint = "
        f"CAST(hash(sex, {', '.join(TOKEN_COLUMNS)}, {', '.join(f'list_sort({c})' for c in LIST_COLUMNS)}, "
        f"{', '.join(BLOOM_COLUMNS)}) >> 4 AS BIGINT)"
    )
    return con.execute("SELECT count(*) FROM lk_tokens").fetchone()[0]


def _model(con, linkage_dir: Path, records: int, retrain: bool) -> tuple[dict, bool]:
    path = linkage_dir / MODEL_FILE
    settings = None if retrain else model.load(path)
    # A provisional model (fitted on one source without matches, e.g. a first site) is fitted again
    # until a run brings the matches that EM learns m from.
    if (
        settings is not None
        and settings.get("model_version") == model.MODEL_VERSION
        and not settings.get("provisional")
    ):
        return settings, False
    model.register_input(con, "lk_tokens")
    settings = model.train(con, records)
    if settings["trained"] or lake.read_text(path) is None:
        model.save(settings, path)
    return settings, True


def _split_new(con, previous_tokens: pa.Table | None) -> None:
    """lk_tokens_new: records not seen before or whose tokens changed; lk_tokens_old: the rest."""
    if previous_tokens is None:
        con.execute("CREATE OR REPLACE TEMP TABLE lk_seen (record_id VARCHAR, fingerprint BIGINT)")
    else:
        con.register("lk_seen_arrow", previous_tokens)
        con.execute("CREATE OR REPLACE TEMP TABLE lk_seen AS SELECT * FROM lk_seen_arrow")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_tokens_new AS SELECT t.* FROM lk_tokens t "
        "ANTI JOIN lk_seen s USING (record_id, fingerprint)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_tokens_old AS SELECT t.* FROM lk_tokens t "
        "SEMI JOIN lk_seen s USING (record_id, fingerprint)"
    )


def _score(con, settings: dict, has_old: bool, new_count: int) -> None:
    if new_count == 0:
        weights = ", ".join(f"NULL::DOUBLE AS mw_{c['output_column_name']}" for c in settings["comparisons"])
        con.execute(
            "CREATE OR REPLACE TEMP TABLE lk_scored AS SELECT NULL::VARCHAR AS record_id_l, NULL::VARCHAR AS "
            f"record_id_r, NULL::DOUBLE AS match_weight, NULL::DOUBLE AS match_probability, {weights} LIMIT 0"
        )
        return
    if has_old:
        model.register_input(con, "lk_tokens_old")
        con.execute("CREATE OR REPLACE TEMP TABLE lk_old_input AS SELECT * FROM lk_model_input")
        model.register_input(con, "lk_tokens_new")
    con.execute("CREATE OR REPLACE TEMP TABLE lk_new_input AS SELECT * FROM lk_model_input")
    model.score(con, settings, "lk_new_input", "lk_old_input" if has_old else None)


def _merge_pairs(con, previous_pairs: pa.Table | None) -> None:
    """lk_pairs: this run's decided pairs plus the kept pairs among unchanged records (their decision
    recomputed, so a reviewer's decision applies to old pairs as well)."""
    con.execute("CREATE OR REPLACE TEMP TABLE lk_pairs AS SELECT * FROM lk_decided")
    if previous_pairs is None or previous_pairs.num_rows == 0:
        return
    con.register("lk_previous_pairs", previous_pairs)
    con.execute(
        f"""
        INSERT INTO lk_pairs BY NAME
        SELECT COLUMNS(c -> c NOT IN ('decision', 'method', 'hold_reason')),  -- held again if still so
            CASE WHEN d.decision IS NOT NULL THEN d.decision
                 {cluster.DECISION_SQL} END AS decision,
            CASE WHEN d.decision IS NOT NULL THEN 'clerical' WHEN p.rule IS NOT NULL THEN 'deterministic'
                 ELSE 'probabilistic' END AS method
        FROM lk_previous_pairs p LEFT JOIN lk_clerical_decisions d USING (record_id_l, record_id_r)
        WHERE p.record_id_l IN (SELECT record_id FROM lk_tokens_old)
          AND p.record_id_r IN (SELECT record_id FROM lk_tokens_old)
        """
    )


def _counts(con, records: int, new: int, full: bool, rounds: int) -> dict[str, float]:
    pairs = dict(con.execute("SELECT decision, count(*) FROM lk_pairs GROUP BY ALL").fetchall())
    methods = dict(con.execute("SELECT match_method, count(*) FROM lk_crosswalk GROUP BY ALL").fetchall())
    # links held back by clustering (cluster.hold_bridges, conflicts.split_conflicts), by reason
    held = dict(
        con.execute(
            "SELECT hold_reason, count(*) FROM lk_pairs WHERE hold_reason IS NOT NULL GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    return {
        "records": records,
        "records_compared_as_new": new,
        "full_relink": float(full),
        "pairs_scored_this_run": con.execute("SELECT count(*) FROM lk_scored").fetchone()[0],
        "pairs_matched": pairs.get("match", 0),
        "pairs_for_review": pairs.get("review", 0),
        "pairs_rejected_by_reviewer": pairs.get("non_match", 0),
        **{f"pairs_held_{why}": n for why, n in held.items()},
        "pairs_decided_not_scored": con.execute("SELECT count(*) FROM lk_decided_missing").fetchone()[0],
        "persons": con.execute("SELECT count(DISTINCT person_id) FROM lk_crosswalk").fetchone()[0],
        "clustering_rounds": rounds,
        **{f"records_{method}": n for method, n in sorted(methods.items())},
        "merges_recorded": con.execute("SELECT count(*) FROM lk_history WHERE event = 'merge'").fetchone()[0],
        "splits_recorded": con.execute("SELECT count(*) FROM lk_history WHERE event = 'split'").fetchone()[0],
    }


def _write(con, linkage_dir: Path, crosswalk: pa.Table, metrics: pa.Table) -> None:
    """Overwrite the linkage tables. Tokens and pairs (millions of rows at scale) are streamed to Delta
    in record batches rather than converted to one Arrow table (that doubled peak memory at 1 M)."""
    stamp = dt.datetime.now(dt.UTC)

    def stream(sql: str) -> pa.RecordBatchReader:
        return con.sql(sql).fetch_record_batch(WRITE_BATCH_ROWS)

    tables = {
        "tokens": lambda: stream("SELECT * FROM lk_tokens"),
        "pairs": lambda: stream("SELECT * FROM lk_pairs ORDER BY record_id_l, record_id_r"),
        "clerical_review": lambda: con.sql(
            "SELECT record_id_l, record_id_r, match_weight, match_probability, * EXCLUDE (record_id_l, "
            "record_id_r, match_weight, match_probability, decision, method, rule) FROM lk_pairs "
            "WHERE decision = 'review' ORDER BY match_probability DESC, record_id_l, record_id_r"
        ).to_arrow_table(),
        "person_crosswalk": lambda: crosswalk,
        "metrics": lambda: metrics.append_column(
            "computed_at", pa.array([stamp] * metrics.num_rows, pa.timestamp("us", "UTC"))
        ),
    }
    for name, table in tables.items():
        lake.write(linkage_dir / name, table(), mode="overwrite", schema_mode="overwrite")
    history = con.sql(
        "SELECT *, ?::TIMESTAMPTZ AS recorded_at FROM lk_history", params=[stamp]
    ).to_arrow_table()
    if history.num_rows:
        lake.write(linkage_dir / "person_history", history, mode="append", schema_mode="merge")
