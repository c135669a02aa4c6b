"""Person rules through to the CDM (issue 18, issue 22 item 1), on hand-written Synthea extracts:

- partial birth dates keep year (and month) in PERSON; a person with no year of birth is the only one
  PERSON leaves out, and every CDM table's rows of that person are counted as excluded;
- demographics follow a rule independent of ingest order: A then B gives the CDM of B then A, a re-sent
  file with one changed birth date changes that person only, the registry's person_priority breaks ties;
- the person reconciliation is computed from the crosswalk, so a PERSON row deleted after the build is
  unaccounted (red), where merged = staged - CDM - excluded could never be.
"""

from __future__ import annotations

import copy
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm.build import build_cdm, reconcile_persons
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry, parse_registry
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.cdm.small_cdm import build as small_build
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    synthea_registry,
)

# each person: (id, first, last, ssn, street, race, birth text)
PEOPLE = {
    "ann": ("Ann", "Lee", "999-10-0001", "1 Main St", "1980-01-02"),
    "bob": ("Bob", "Stone", "999-10-0002", "2 Oak Ave", "1975-03-04"),
    "cy": ("Cy", "Park", "999-10-0003", "3 Elm Rd", "1990-05-06"),
}


def row(pid: str, race: str = "white", birth: str | None = None, person: str | None = None) -> str:
    first, last, ssn, street, default_birth = PEOPLE[person or pid]
    birth = default_birth if birth is None else birth
    return (
        f"{pid},{birth},,{ssn},,,,{first},{last},,,,{race},nonhispanic,F,,{street},Boston,MA,Suffolk County,"
        "02110,,,0,0\n"
    )


def clinical(pids: list[str], start: str) -> dict[str, str]:
    """One encounter and one condition per person, on the day `start`."""
    encounters = "".join(
        encounter(f"e-{p}", p, start=f"{start}T10:00:00Z", stop=f"{start}T11:00:00Z") for p in pids
    )
    conditions = "".join(f"{start},,{p},e-{p},44054006,Diabetes\n" for p in pids)
    return {
        "encounters.csv": ENCOUNTERS_HEADER + encounters,
        "conditions.csv": CONDITIONS_HEADER + conditions,
    }


def persons(cdm: Path) -> list[tuple]:
    with duckdb.connect(str(cdm), read_only=True) as con:
        return con.execute(
            "SELECT year_of_birth, month_of_birth, day_of_birth, birth_datetime, race_source_value FROM cdm.person "
            "ORDER BY ALL"
        ).fetchall()


def reconciliation(cdm: Path) -> dict[str, tuple]:
    with duckdb.connect(str(cdm), read_only=True) as con:
        rows = con.execute(
            "SELECT cdm_table, staged_rows, cdm_rows, merged_rows, excluded_rows, unaccounted "
            "FROM results.reconciliation WHERE layer = 'cdm'"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


# --- birth dates: partial ones keep their persons; no year of birth is excluded and counted ------------

BIRTH_CASES = {
    "full": "1980-01-02",
    "year": "1948",
    "month": "1951-08",
    "impossible": "2019-02-30",
    "none": "",
}


@pytest.fixture(scope="module")
def births_cdm(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("births")
    names = ("Ann Lee", "Bob Stone", "Cy Park", "Dee Moss", "Eve Hart")
    people = "".join(
        f"{pid},{text},,999-20-000{n},,,,{names[n].split()[0]},{names[n].split()[1]},,,,white,nonhispanic,F,,"
        f"{n} Main St,Boston,MA,,0211{n},,,0,0\n"
        for n, (pid, text) in enumerate(BIRTH_CASES.items())
    )
    batch = {"patients.csv": PATIENTS_HEADER + people, **clinical(list(BIRTH_CASES), "2020-01-01")}
    cdm = small_build(tmp, synthea_registry(), "site", [batch])
    return cdm, tmp / "lake"


def test_partial_birth_dates_keep_year_and_month(births_cdm):
    cdm, _ = births_cdm
    # (year, month, day, has birth_datetime): the datetime only for a full date
    assert [(*p[:3], p[3] is not None) for p in persons(cdm)] == [
        (1948, None, None, False),  # '1948'
        (1951, 8, None, False),  # '1951-08'
        (1980, 1, 2, True),  # '1980-01-02'
        (2019, 2, None, False),  # '2019-02-30': year and month kept, no day
    ]


def test_only_the_person_without_a_year_of_birth_is_excluded_and_counted_everywhere(births_cdm):
    cdm, _ = births_cdm
    with duckdb.connect(str(cdm), read_only=True) as con:
        assert con.execute(
            "SELECT reason_code, count(*) FROM results.person_exclusion GROUP BY ALL"
        ).fetchall() == [("NO_YEAR_OF_BIRTH", 1)]
        orphans = con.execute(
            "SELECT count(*) FROM cdm.condition_occurrence WHERE person_id NOT IN (SELECT person_id FROM cdm.person)"
        ).fetchone()[0]
    assert orphans == 0
    counts = reconciliation(cdm)
    # (staged, cdm, merged, excluded, unaccounted): the excluded person's record, visit and condition
    assert counts["person"] == (5, 4, 0, 1, 0)
    assert counts["visit_occurrence"] == (5, 4, 0, 1, 0)
    assert counts["visit_detail"] == (5, 4, 0, 1, 0)
    assert counts["+".join(cdm_build.EVENT_TABLES)][-2:] == (1, 0)


def test_a_person_row_deleted_after_the_build_is_unaccounted(births_cdm, tmp_path):
    cdm, lake_dir = births_cdm
    assert reconcile_persons(cdm, lake_dir).unaccounted == 0
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(cdm.read_bytes())
    with duckdb.connect(str(damaged)) as con:
        con.execute("DELETE FROM cdm.person WHERE person_id = (SELECT min(person_id) FROM cdm.person)")
    check = reconcile_persons(damaged, lake_dir)
    assert (check.cdm_rows, check.excluded_rows, check.unaccounted) == (3, 1, 1)


def test_the_build_check_is_red_when_a_person_is_lost_during_the_build(births_cdm, tmp_path, monkeypatch):
    """The build's own reconciliation (the asset check's input) sees a person lost between PERSON's
    insert and the accounting: with merged = staged - CDM - excluded it would have stayed 0."""
    _, lake_dir = births_cdm
    exclude = cdm_build._exclude_unobserved_persons

    def exclude_and_lose_one(con):
        exclude(con)
        con.execute("DELETE FROM cdm.person WHERE person_id = (SELECT max(person_id) FROM cdm.person)")

    monkeypatch.setattr(cdm_build, "_exclude_unobserved_persons", exclude_and_lose_one)
    report = build_cdm(lake_dir, REPO_DIR / "vocab", tmp_path / "warehouse", registry=synthea_registry())
    (person,) = [r for r in report.reconciliation if r.cdm_table == "person"]
    assert person.unaccounted == 1


# --- demographics independent of ingest order ---------------------------------------------------------


def two_sites(priority: dict[str, int] | None = None):
    """Two Synthea CSV sources, site_a and site_b, each with its own optional person_priority."""
    entities = [
        {"name": e.name, "required_columns": list(e.required_columns)}
        for e in load_registry().get("ehr_site_a").entities
    ]
    sources = []
    for name in ("site_a", "site_b"):
        source = {"name": name, "kind": "ehr", "format": "csv", "extract": "snapshot", "owner": "test",
                  "staging_profile": "synthea_csv", "entities": copy.deepcopy(entities)}  # fmt: skip
        if priority and name in priority:
            source["person_priority"] = priority[name]
        sources.append(source)
    return parse_registry({"sources": sources})


# Site A knows ann, bob and cy (2020 visits); site B knows ann and bob under its own ids, with another
# race, seen later (2021): B's records are the more recent by the sources' own dates, whoever lands first.
SITE_A = {
    "patients.csv": PATIENTS_HEADER + row("ann") + row("bob") + row("cy"),
    **clinical(["ann", "bob", "cy"], "2020-01-01"),
}
SITE_B = {
    "patients.csv": PATIENTS_HEADER
    + row("b-ann", "black", person="ann")
    + row("b-bob", "asian", person="bob"),
    **clinical(["b-ann", "b-bob"], "2021-06-01"),
}
# site A re-sends its patients file, cy's birth date corrected
SITE_A_RESENT = {"patients.csv": PATIENTS_HEADER + row("ann") + row("bob") + row("cy", birth="1990-06-05")}


def link_and_build(
    tmp: Path, registry, landings: list[tuple[str, str, dict]], lake_dir: Path | None = None
) -> Path:
    """Land and ingest each (source, batch, files) in order, stage, link, build; returns the CDM file."""
    lake_dir, landing = lake_dir or tmp / "lake", (lake_dir or tmp / "lake").parent / "landing"
    for source, batch, files in landings:
        land(landing, source, batch, files)
        ingest_batch(lake_dir, landing, registry.get(source), batch)
    build_staging(lake_dir, registry)
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, "test-key")
    return build_cdm(lake_dir, REPO_DIR / "vocab", tmp / "warehouse", registry=registry).path


@pytest.fixture(scope="module")
def a_then_b(tmp_path_factory) -> tuple[Path, Path]:
    """The CDM of site A then site B, and its lake (a later test lands a re-sent file there: the CDM
    file stays as built)."""
    tmp = tmp_path_factory.mktemp("a_then_b")
    return link_and_build(
        tmp, two_sites(), [("site_a", "b1", SITE_A), ("site_b", "b1", SITE_B)]
    ), tmp / "lake"


def test_ingest_order_does_not_change_the_cdm(a_then_b, tmp_path):
    a_then_b, _ = a_then_b
    b_then_a = link_and_build(tmp_path, two_sites(), [("site_b", "b1", SITE_B), ("site_a", "b1", SITE_A)])
    comparison = compare_cdms(a_then_b, b_then_a)
    assert comparison.same, format_comparison(comparison)
    # the linked persons take site B's race: its records are the latest by the sources' own dates
    assert sorted(p[4] for p in persons(a_then_b)) == ["asian", "black", "white"]
    assert reconciliation(a_then_b)["person"] == (5, 3, 2, 0, 0)  # two records merged into linked persons


def test_a_resent_file_with_one_changed_birth_date_changes_only_that_person(a_then_b, tmp_path):
    first, lake_dir = a_then_b
    resent = link_and_build(tmp_path, two_sites(), [("site_a", "b2", SITE_A_RESENT)], lake_dir)
    person = compare_cdms(first, resent).table("person")
    assert (person.only_in_a, person.only_in_b) == (1, 1), format_comparison(compare_cdms(first, resent))
    assert {p[:3] for p in persons(first)} ^ {p[:3] for p in persons(resent)} == {(1990, 5, 6), (1990, 6, 5)}


def test_the_registry_priority_breaks_a_tie_of_record_dates(tmp_path):
    same_day = {**SITE_B, **clinical(["b-ann", "b-bob"], "2020-01-01")}  # B seen the same day as A
    landings = [("site_a", "b1", SITE_A), ("site_b", "b1", same_day)]
    lake_dir = tmp_path / "lake"
    a_first = link_and_build(tmp_path / "a", two_sites({"site_a": 1, "site_b": 2}), landings, lake_dir)
    b_first = build_cdm(lake_dir, REPO_DIR / "vocab", tmp_path / "b", registry=two_sites({"site_b": 1})).path
    assert sorted(p[4] for p in persons(a_first)) == ["white", "white", "white"]
    assert sorted(p[4] for p in persons(b_first)) == ["asian", "black", "white"]
