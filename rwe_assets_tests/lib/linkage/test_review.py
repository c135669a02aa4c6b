"""Clerical review workflow: export pending pairs, decide, import, relink; decisions persist across a
further batch; a bad file is rejected whole, naming file, line and field but no value."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from rwe_assets.lib import lake
from rwe_assets.lib.governance import audit
from rwe_assets.lib.linkage import review
from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Mark",
    "family_name": "Okonkwo",
    "birth_date": "1970-05-17",
    "sex": "M",
    "ssn": None,
    "address_line": "12 Elm Street",
    "zip": "01970",
    "phone": "555-201-3344",
    "_batch_id": "b1",
}
ROWS = [
    {**BASE, "source_system": "site_a", "source_person_id": "a"},
    {**BASE, "given_name": "Samuel", "source_system": "site_b", "source_person_id": "b"},  # a twin
    # the same Mark after a move, birth month mistyped: p ~ 0.54, in review
    {**BASE, "birth_date": "1970-07-17", "address_line": "3 Oak Rd", "phone": None, "zip": "02110",
     "source_system": "payer", "source_person_id": "p"},
]  # fmt: skip
PAYER, MARK, TWIN = ("payer", "p"), ("site_a", "a"), ("site_b", "b")


def stage(lake_dir: Path, rows: list[dict]) -> None:
    """staging/person_source and staging/person_pii as the staging assets write them."""
    columns = ("source_system", "source_person_id", *BASE)
    pii = pa.table({c: [r.get(c) for r in rows] for c in columns})
    for name, table in (
        ("person_pii", pii),
        ("person_source", pii.select(list(columns[:2]) + ["_batch_id"])),
    ):
        write_deltalake(
            str(lake.table_path(lake_dir, "staging", name)), table, mode="overwrite", schema_mode="overwrite"
        )


def relink(lake_dir: Path) -> dict:
    con = duckdb.connect()
    register_staged_persons(con, lake_dir)
    result = link(con, lake_dir, KEY)
    return {(r["source_system"], r["source_person_id"]): r for r in result.crosswalk.to_pylist()}


def export(lake_dir: Path, out: Path) -> list[dict]:
    assert review.export_pending(duckdb.connect(), lake_dir, out) >= 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_decisions(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def pair_of(rows: list[dict], a: tuple, b: tuple) -> dict:
    ids = {f"{a[0]}|{a[1]}", f"{b[0]}|{b[1]}"}
    return next(
        r
        for r in rows
        if {
            f"{r['source_system_l']}|{r['source_person_id_l']}",
            f"{r['source_system_r']}|{r['source_person_id_r']}",
        }
        == ids
    )


def import_file(lake_dir: Path, path: Path, **options):
    return review.import_decisions(duckdb.connect(), lake_dir, path, "tester", **options)


@pytest.fixture
def reviewed(tmp_path):
    """A linked lake (<tmp>/data/lake) with two pairs in review, exported."""
    lake_dir = tmp_path / "data" / "lake"
    stage(lake_dir, ROWS)
    first = relink(lake_dir)
    exported = export(lake_dir, lake_dir / "review" / "pending.csv")
    return lake_dir, first, exported


def test_export_shows_pending_pairs_side_by_side_owner_only(reviewed):
    lake_dir, first, exported = reviewed
    out = lake_dir / "review" / "pending.csv"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(exported) == 2
    twins = pair_of(exported, MARK, TWIN)
    assert twins["household_conflict"] == "true"
    assert {twins["given_name_l"], twins["given_name_r"]} == {"Mark", "Samuel"}
    assert "given" in twins["disagree"].split() and "dob" in twins["agree"].split()
    moved = pair_of(exported, MARK, PAYER)
    assert {moved["birth_date_l"], moved["birth_date_r"]} == {"1970-05-17", "1970-07-17"}
    assert 0.5 <= float(moved["match_probability"]) < 0.95
    assert first[MARK]["person_id"] != first[PAYER]["person_id"]
    with pytest.raises(review.InputFileError, match="exists"):
        review.export_pending(duckdb.connect(), lake_dir, out)


def test_decisions_are_honoured_and_persist_across_a_further_batch(reviewed):
    lake_dir, first, exported = reviewed
    decided = [
        {**pair_of(exported, MARK, PAYER), "decision": "match", "note": "moved house"},
        {**pair_of(exported, MARK, TWIN), "decision": "NON_MATCH", "reviewer": "dr who"},
    ]
    path = lake_dir / "review" / "decided.csv"
    write_decisions(path, decided)
    result = import_file(lake_dir, path)
    assert result.decisions == {"match": 1, "non_match": 1} and result.left_pending == 0
    assert review.review_status(lake_dir)["pending"] == 0  # decided pairs leave the pending list at once
    assert review.review_status(lake_dir)["decided_waiting_for_run"] == 2
    stored = lake.read_table(lake.table_path(lake_dir, "linkage", "clerical_decisions")).to_pylist()
    assert {(r["decision"], r["decided_by"], r["note"]) for r in stored} == {
        ("match", "tester", "moved house"),
        ("non_match", "dr who", None),
    }
    trail = audit.read_trail_in(lake_dir).to_pylist()
    assert trail[-1]["action"] == "review_decision" and '"decided_match":1' in trail[-1]["what"]
    assert "Mark" not in trail[-1]["what"] and "moved" not in trail[-1]["what"]

    second = relink(lake_dir)
    merged = min(first[PAYER]["person_id"], first[MARK]["person_id"])  # the oldest id stays
    assert second[PAYER]["person_id"] == second[MARK]["person_id"] == merged
    assert second[PAYER]["match_method"] == "clerical"
    assert second[TWIN]["person_id"] != second[MARK]["person_id"]
    status = review.review_status(lake_dir)
    assert (status["pending"], status["decided_waiting_for_run"], status["pairs_settled_by_reviewers"]) == (
        0,
        0,
        2,
    )
    assert export(lake_dir, lake_dir / "review" / "again.csv") == []

    # a further batch: a new record of Mark; the reviewed decisions still hold
    stage(
        lake_dir, [*ROWS, {**BASE, "given_name": "Marc", "source_system": "site_c", "source_person_id": "c"}]
    )
    third = relink(lake_dir)
    assert third[PAYER]["person_id"] == third[MARK]["person_id"] == merged
    assert third[("site_c", "c")]["person_id"] == merged
    assert third[TWIN]["person_id"] == second[TWIN]["person_id"] != third[MARK]["person_id"]


def test_a_revised_decision_splits_the_person(reviewed):
    lake_dir, _, exported = reviewed
    path = lake_dir / "review" / "decided.csv"
    write_decisions(path, [{**pair_of(exported, MARK, PAYER), "decision": "match"}])
    import_file(lake_dir, path)
    joined = relink(lake_dir)
    assert joined[PAYER]["person_id"] == joined[MARK]["person_id"]
    with pytest.raises(review.ReviewFileError, match="decided it already"):
        import_file(lake_dir, path)
    write_decisions(path, [{**pair_of(exported, MARK, PAYER), "decision": "non_match"}])
    import_file(lake_dir, path, revise=True)
    split = relink(lake_dir)
    kept, other = sorted((split[MARK]["person_id"], split[PAYER]["person_id"]))
    assert kept == joined[MARK]["person_id"] and other > max(r["person_id"] for r in joined.values())
    history = lake.read_table(lake.table_path(lake_dir, "linkage", "person_history")).to_pylist()
    assert any(h["event"] == "split" and h["person_id"] == kept for h in history)


def test_a_bad_file_is_rejected_whole_naming_line_and_field_never_a_value(reviewed):
    lake_dir, _, exported = reviewed
    good = {**pair_of(exported, MARK, PAYER), "decision": "match"}
    rows = [
        good,
        {**pair_of(exported, MARK, TWIN), "decision": "Samuel"},  # a value in the wrong column
        {**good, "pair_id": "0123456789abcdef"},  # unknown pair
        {**good},  # the same pair twice
    ]
    path = lake_dir / "review" / "bad.csv"
    write_decisions(path, rows)
    with pytest.raises(review.ReviewFileError) as caught:
        import_file(lake_dir, path)
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        f"{path} line 3 field decision: expected match, non_match or empty",
        f"{path} line 4 field pair_id: unknown pair: not among the pairs of the last linkage run (a file "
        "of another data directory, or an edited pair_id?)",
        f"{path} line 5 field pair_id: the pair is decided on line 2 too",
    ]
    assert not any(v in p for p in problems for v in ("Samuel", "Mark", "Okonkwo"))
    assert (
        lake.read_table(lake.table_path(lake_dir, "linkage", "clerical_decisions")) is None
    )  # nothing appended
    assert audit.read_trail_in(lake_dir).to_pylist()[-1]["outcome"] == "refused"
    # a pair the model decided without review is not pending: a duplicate of Mark matches him
    stage(lake_dir, [*ROWS, {**BASE, "source_system": "site_c", "source_person_id": "dup"}])
    relink(lake_dir)
    con = duckdb.connect()
    review.register_review_tables(con, lake_dir)
    (matched,) = con.execute("SELECT pair_id FROM rv_pairs WHERE decision = 'match' LIMIT 1").fetchone()
    write_decisions(path, [{**good, "pair_id": matched}])
    with pytest.raises(
        review.ReviewFileError,
        match=r"line 2 field pair_id: pair not pending: the last linkage run decided it \(match, deterministic\)",
    ):
        import_file(lake_dir, path)
    path.write_text("pair,verdict\nx,match\n")
    with pytest.raises(review.ReviewFileError, match="line 1 field pair_id: missing column"):
        import_file(lake_dir, path)


def test_cli_export_import_status(reviewed, monkeypatch, capsys):
    from rwe_assets import cli

    lake_dir, _, _ = reviewed
    monkeypatch.setenv("RWE_DATA_DIR", str(lake_dir.parent))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli.main(["review", "status"]) == 0
    assert "pairs pending review: 2 (household conflict: 1)" in capsys.readouterr().out
    out = lake_dir / "cli.csv"
    assert cli.main(["review", "export", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(newline="")))
    write_decisions(out, [{**rows[0], "decision": "match"}, *rows[1:]])
    assert cli.main(["review", "import", str(out)]) == 0
    assert "imported 1 decisions (1 match, 0 non_match); 1 rows left empty" in capsys.readouterr().out
    assert cli.main(["review", "import", str(lake_dir / "missing.csv")]) == 2
