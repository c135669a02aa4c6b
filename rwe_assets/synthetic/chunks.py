"""One chunk of persons from simulation to rendered lines, and the chunks of a run in order.

A chunk's random streams are seeded by (seed, stream, chunk number), so a chunk's output depends
only on (seed, chunk number, persons, config): the same in a worker process as in the main one.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic import identity, membership
from rwe_assets.synthetic.catalogue_reader import load_catalogue, load_names
from rwe_assets.synthetic.clinical.encounters import build
from rwe_assets.synthetic.clinical.natural_history import prepare
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.formats import fhir, lab, synpuf, synthea
from rwe_assets.synthetic.formats.common import Chunk, Piece, csv_lines
from rwe_assets.synthetic.landing_files import gzip_member
from rwe_assets.synthetic.population import make_persons
from rwe_assets.synthetic.reference import make_reference
from rwe_assets.synthetic.truth import truth_tables
from rwe_assets.synthetic.util import NEVER, stream, uuids

# (chunk index, batch, first person id, persons, first chunk of its batch)
PlanRow = tuple[int, str, int, int, bool]


@dataclass
class ChunkResult:
    index: int
    batch: str
    pieces: dict[tuple[str, str], Piece]  # (source, file key) -> lines
    vcf: lab.VcfOutput | None
    truth: dict[str, bytes]
    records: dict[str, int]
    duplicates: dict[str, int]
    noise: dict[str, dict[str, int]]
    counts: dict[str, int]


def _flags(records: identity.Records) -> dict[str, int]:
    return {
        "typo": int(records.typo.sum()),
        "nickname": int(records.nickname.sum()),
        "day_month_swap": int(records.dm_swap.sum()),
        "old_surname": int(records.old_surname.sum()),
        "old_address": int(records.old_address.sum()),
        "ssn_missing": int(records.ssn_missing.sum()),
    }


def simulate_chunk(
    seed: int, index: int, batch: str, first_pid: int, n: int, first_in_batch: bool, config: NoiseConfig
) -> Chunk:
    """The persons of one chunk, their clinical life, enrollment, lab tests and source records."""
    names, cat = load_names(), load_catalogue()
    persons = make_persons(stream(seed, "population", index), first_pid, n, seed, config, names, cat)
    prepared = prepare(stream(seed, "clinical", index), persons, cat, config)
    ms = membership.assign(stream(seed, "membership", index), persons.birth, persons.death, config)
    timeline = build(stream(seed, "timeline", index), persons, ms, prepared, cat, config)
    tests = identity.select_lab_tests(stream(seed, "lab", index), persons, ms, prepared, cat, config)
    rng_id = stream(seed, "identity", index)
    records = {
        "ehr_site_a": identity.ehr_records(
            rng_id, "ehr_site_a", persons, ms.in_a, ms.a_start, ms.a_dup_day, names, config
        ),
        "ehr_site_b": identity.ehr_records(
            rng_id, "ehr_site_b", persons, ms.in_b, ms.b_start, ms.b_dup_day, names, config
        ),
        "payer": identity.payer_records(rng_id, persons, ms, names, config),
        "lab": identity.lab_records(rng_id, persons, tests, names, config),
    }
    return Chunk(
        seed=seed,
        index=index,
        batch=batch,
        first_in_batch=first_in_batch,
        persons=persons,
        membership=ms,
        prepared=prepared,
        timeline=timeline,
        records=records,
        lab=tests,
        catalogue=cat,
        names=names,
        config=config,
        reference=make_reference(seed, names),
        encounter_ids=uuids(stream(seed, "ids", index), len(timeline.e_person)),
        rng=stream(seed, "render", index),
    )


def _render(chunk: Chunk) -> tuple[dict[tuple[str, str], Piece], lab.VcfOutput | None, dict[str, bytes]]:
    """Every source's lines of the chunk, its VCF and its truth rows."""
    pieces: dict[tuple[str, str], Piece] = {}
    for entity, piece in synthea.render(chunk).items():
        pieces[("ehr_site_a", entity)] = piece
    for resource_type, piece in fhir.render(chunk).items():
        pieces[("ehr_site_b", resource_type)] = piece
    for key, piece in synpuf.render(chunk).items():
        pieces[("payer", key)] = piece
    name = lab.vcf_name(chunk.index)
    vcf = lab.render_vcf(chunk, name)
    pieces[("lab", "sample_manifest")] = lab.render_manifest(chunk, name)
    truth = truth_tables(chunk, name if vcf else "")
    if vcf is not None:
        truth["genotypes"] = csv_lines(vcf.genotypes)
    return pieces, vcf, truth


def run_chunk(
    seed: int,
    index: int,
    batch: str,
    first_pid: int,
    n: int,
    first_in_batch: bool,
    config: NoiseConfig,
    compress: bool,
) -> ChunkResult:
    chunk = simulate_chunk(seed, index, batch, first_pid, n, first_in_batch, config)
    pieces, vcf, truth = _render(chunk)
    if compress:  # in the worker, so parallel chunks compress in parallel; one gzip member per piece
        for piece in pieces.values():
            piece.data = gzip_member(piece.data)
    persons, records, prepared = chunk.persons, chunk.records, chunk.prepared
    breast = chunk.catalogue.condition("breast_cancer").index
    return ChunkResult(
        index=index,
        batch=batch,
        pieces=pieces,
        vcf=vcf,
        truth=truth,
        records={s: len(r) for s, r in records.items()},
        duplicates={s: int(r.dup.sum()) for s, r in records.items()},
        noise={s: _flags(r) for s, r in records.items()},
        counts={
            "lab_samples": len(chunk.lab.person),
            "carriers": int((persons.carrier >= 0).sum()),
            "breast_cancer": int((prepared.onset[:, breast] < NEVER).sum()),
            "twins": int((persons.twin_of > 0).sum()),
            "deaths": int((persons.death < NEVER).sum()),
        },
    )


def batch_names(batches: int) -> list[str]:
    return [f"batch_{i + 1:04d}" for i in range(batches)]


def chunk_plan(persons: int, batches: int, chunk_size: int) -> list[PlanRow]:
    """(chunk index, batch, first pid, persons, first chunk of its batch) for every chunk."""
    names = batch_names(batches)
    bounds = np.linspace(0, persons, batches + 1).round().astype(np.int64)
    plan = []
    index = 0
    for b, name in enumerate(names):
        start, stop = int(bounds[b]), int(bounds[b + 1])
        first = True
        for lo in range(start, stop, chunk_size):
            plan.append((index, name, lo + 1, min(chunk_size, stop - lo), first))
            index += 1
            first = False
    return plan


def results(
    seed: int, plan: list[PlanRow], config: NoiseConfig, workers: int, compress: bool
) -> Iterator[ChunkResult]:
    if workers <= 1:
        for index, batch, first_pid, n, first in plan:
            yield run_chunk(seed, index, batch, first_pid, n, first, config, compress)
        return
    # bounded look-ahead: at most workers + 1 chunks in flight, results consumed in order. Spawned
    # workers: forking a process whose polars thread pool is running can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = []
        queue = list(plan)
        while queue or pending:
            while queue and len(pending) < workers + 1:
                index, batch, first_pid, n, first = queue.pop(0)
                pending.append(
                    pool.submit(run_chunk, seed, index, batch, first_pid, n, first, config, compress)
                )
            yield pending.pop(0).result()
