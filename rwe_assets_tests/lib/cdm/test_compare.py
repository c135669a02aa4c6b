"""CDM comparison: two tiny CDM files built with the project's DDL, the same facts under other surrogate
ids and in another row order, then one change at a time with the expected differences written out."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rwe_assets.cli import main
from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.cdm.compare.plan import hash_order as _hash_order
from rwe_assets.lib.cdm.compare.plan import plan_table as _plan
from rwe_assets.lib.cdm_spec import CDM_SCHEMA, cdm_ddl, cdm_spec
from rwe_assets.lib.genomics.cdm import gcdm_spec

Rows = dict[str, list[dict[str, Any]]]
Ids = Callable[[str, int], int]

EHR = 32817
MALE, FEMALE = 8507, 8532
OUTPATIENT, INPATIENT = 9202, 9201
DIABETES, HYPERTENSION = 201826, 320128
SMOKER = 4298794
# CDM Field concept naming the table an observation_event_id points into.
CONDITION_OCCURRENCE_FIELD = 1147127
CONDITION_DOMAIN = 19  # domain 'Condition', the table fact_relationship's fact ids point into
ASSOCIATED_WITH = 44818790
D = dt.date
_DEFAULTS = {"INTEGER": 0, "BIGINT": 0, "DOUBLE": 0.0, "DATE": D(2000, 1, 1), "VARCHAR": "x"}
BUILD_DATE = D(2026, 1, 1)
# The tables the facts use, the vocabulary's concept and domain, cdm_source, and note (empty on both sides).
TABLES = (
    "location",
    "care_site",
    "provider",
    "person",
    "visit_occurrence",
    "visit_detail",
    "condition_occurrence",
    "cost",
    "observation",
    "note",
    "fact_relationship",
    "concept",
    "domain",
    "cdm_source",
)


def original(table: str, n: int) -> int:
    return n


def renumbered(table: str, n: int) -> int:
    """Other ids, in the opposite order, as a build from another extract could give."""
    return 900 - 7 * n


def facts(ids: Ids) -> Rows:
    """Three persons, their visits, conditions, costs and an observation; `ids(table, n)` numbers them."""
    loc, site, prov = (partial(ids, table) for table in ("location", "care_site", "provider"))
    per, vis, cond = (partial(ids, table) for table in ("person", "visit_occurrence", "condition_occurrence"))
    return {
        "location": [
            {"location_id": loc(1), "city": "Leeds", "zip": "LS1"},
            {"location_id": loc(2), "city": "York", "zip": "YO1"},
        ],
        "care_site": [{"care_site_id": site(1), "care_site_name": "North clinic", "location_id": loc(1)}],
        "provider": [{"provider_id": prov(1), "provider_name": "Dr A", "care_site_id": site(1)}],
        "person": [
            _person(per(1), MALE, 1970, "P1", location_id=loc(1), provider_id=prov(1), care_site_id=site(1)),
            _person(per(2), FEMALE, 1980, "P2", location_id=loc(2)),
            _person(per(3), FEMALE, 1990, "P3"),
        ],
        "visit_occurrence": [
            _visit(vis(1), per(1), OUTPATIENT, D(2020, 1, 1), D(2020, 1, 1), care_site_id=site(1)),
            _visit(
                vis(2), per(1), OUTPATIENT, D(2020, 2, 1), D(2020, 2, 1), preceding_visit_occurrence_id=vis(1)
            ),
            _visit(vis(3), per(2), INPATIENT, D(2020, 3, 1), D(2020, 3, 4)),
        ],
        "condition_occurrence": [
            _condition(cond(1), per(1), vis(1), DIABETES, D(2020, 1, 1)),
            _condition(cond(2), per(1), vis(2), HYPERTENSION, D(2020, 2, 1)),
            _condition(cond(3), per(2), vis(3), DIABETES, D(2020, 3, 2), condition_end_date=D(2020, 3, 4)),
        ],
        "cost": [
            _cost(ids("cost", 1), cond(2), "Condition", 100.0),
            _cost(ids("cost", 2), vis(3), "Visit", 2500.0),
        ],
        "observation": [
            {
                "observation_id": ids("observation", 1),
                "person_id": per(1),
                "observation_concept_id": SMOKER,
                "observation_date": D(2020, 1, 1),
                "observation_type_concept_id": EHR,
                "observation_event_id": cond(1),
                "obs_event_field_concept_id": CONDITION_OCCURRENCE_FIELD,
            }
        ],
        "fact_relationship": [
            {
                "domain_concept_id_1": CONDITION_DOMAIN,
                "fact_id_1": cond(1),
                "domain_concept_id_2": CONDITION_DOMAIN,
                "fact_id_2": cond(2),
                "relationship_concept_id": ASSOCIATED_WITH,
            }
        ],
        "domain": [
            {"domain_id": "Condition", "domain_name": "Condition", "domain_concept_id": CONDITION_DOMAIN}
        ],
        "concept": [
            {
                "concept_id": CONDITION_OCCURRENCE_FIELD,
                "concept_name": "condition_occurrence.condition_occurrence_id",
                "domain_id": "Metadata",
                "vocabulary_id": "CDM",
                "concept_class_id": "Field",
                "concept_code": "CDM1147127",
            }
        ],
    }


def _person(person_id: int, gender: int, year: int, source_value: str, **more: int) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "gender_concept_id": gender,
        "year_of_birth": year,
        "person_source_value": source_value,
        **more,
    }


def _visit(visit_id: int, person_id: int, concept: int, start: D, end: D, **more: int) -> dict[str, Any]:
    return {
        "visit_occurrence_id": visit_id,
        "person_id": person_id,
        "visit_concept_id": concept,
        "visit_start_date": start,
        "visit_end_date": end,
        "visit_type_concept_id": EHR,
        **more,
    }


def _condition(condition_id: int, person_id: int, visit_id: int, concept: int, start: D, **more) -> dict:
    return {
        "condition_occurrence_id": condition_id,
        "person_id": person_id,
        "visit_occurrence_id": visit_id,
        "condition_concept_id": concept,
        "condition_start_date": start,
        "condition_type_concept_id": EHR,
        **more,
    }


def _cost(cost_id: int, event_id: int, domain: str, charge: float) -> dict[str, Any]:
    return {
        "cost_id": cost_id,
        "cost_event_id": event_id,
        "cost_domain_id": domain,
        "cost_type_concept_id": EHR,
        "total_charge": charge,
    }


def write_cdm(path: Path, rows: Rows, build_date: D = BUILD_DATE) -> Path:
    """A DuckDB file with the CDM tables of TABLES (empty unless given rows) and a cdm_source row."""
    rows = {**rows, "cdm_source": [{"cdm_source_name": "test", "cdm_release_date": build_date}]}
    with duckdb.connect(str(path)) as con:
        for statement in cdm_ddl(tables=TABLES):
            con.execute(statement)
        for table, table_rows in rows.items():
            for row in table_rows:
                _insert(con, table, row)
    return path


def _insert(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    required = {f.name: _DEFAULTS[f.duckdb_type] for f in cdm_spec().table(table).fields if f.is_required}
    full = {**required, **row}
    con.execute(
        f"INSERT INTO {CDM_SCHEMA}.{table} ({', '.join(full)}) VALUES ({', '.join('?' * len(full))})",
        list(full.values()),
    )


def write_pair(tmp_path: Path, change: Callable[[Rows], None] | None = None) -> tuple[Path, Path]:
    """A: the facts numbered 1, 2, 3. B: the same facts renumbered, rows reversed, built on another day,
    then `change` applied to B's rows."""
    a = write_cdm(tmp_path / "a.duckdb", facts(original))
    b_rows = facts(renumbered)
    if change is not None:
        change(b_rows)
    reversed_rows = {table: rows[::-1] for table, rows in b_rows.items()}
    return a, write_cdm(tmp_path / "b.duckdb", reversed_rows, build_date=D(2026, 2, 2))


def b_row(rows: Rows, table: str, n: int) -> dict[str, Any]:
    """The n-th row of B's `table`, found by its renumbered id."""
    return next(r for r in rows[table] if r[f"{table}_id"] == renumbered(table, n))


def differing(result) -> dict[str, tuple[int, int]]:
    return {t.table: (t.only_in_a, t.only_in_b) for t in result.differing}


# --- same facts ---------------------------------------------------------------------------------


def test_renumbered_ids_and_another_row_order_hold_the_same_facts(tmp_path):
    a, b = write_pair(tmp_path)
    with duckdb.connect(str(b), read_only=True) as con:
        assert con.execute("SELECT min(person_id) FROM cdm.person").fetchone()[0] == renumbered("person", 3)

    result = compare_cdms(a, b)

    assert result.same, format_comparison(result)
    conditions = result.table("condition_occurrence")
    assert (conditions.rows_a, conditions.rows_b, conditions.only_in_a, conditions.only_in_b) == (3, 3, 0, 0)
    names = [t.table for t in result.tables]
    assert {"person", "visit_occurrence", "cost", "observation", "note"} <= set(names)  # note: empty both
    assert "cdm_source" not in names and "concept" not in names
    assert "SAME" in format_comparison(result)


def test_the_same_copies_on_both_sides_are_the_same(tmp_path):
    def copy_condition(rows: Rows) -> None:
        rows["condition_occurrence"].append({**rows["condition_occurrence"][0], "condition_occurrence_id": 7})

    a = write_cdm(tmp_path / "a.duckdb", _changed(facts(original), copy_condition))
    b = write_cdm(tmp_path / "b.duckdb", _changed(facts(renumbered), copy_condition))

    assert compare_cdms(a, b).same


def _changed(rows: Rows, change: Callable[[Rows], None]) -> Rows:
    change(rows)
    return rows


# --- one change at a time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "new_value"),
    [
        ("condition_concept_id", HYPERTENSION),
        ("condition_start_date", D(2020, 3, 3)),
        ("condition_end_date", None),  # a value against NULL
    ],
)
def test_one_changed_value_differs_and_the_report_shows_the_row_on_each_side(tmp_path, column, new_value):
    a, b = write_pair(
        tmp_path, lambda rows: b_row(rows, "condition_occurrence", 3).update({column: new_value})
    )

    result = compare_cdms(a, b)

    assert differing(result) == {"condition_occurrence": (1, 1)}
    table = result.table("condition_occurrence")
    old_value = facts(original)["condition_occurrence"][2][column]
    assert [(r["condition_occurrence_id"], r[column]) for r in table.sample_a] == [(3, old_value)]
    b_id = renumbered("condition_occurrence", 3)
    assert [(r["condition_occurrence_id"], r[column]) for r in table.sample_b] == [(b_id, new_value)]
    report = format_comparison(result)
    assert "condition_occurrence: 1 row only in A, 1 row only in B" in report
    assert "condition_occurrence_id=3 " in report and f"condition_occurrence_id={b_id} " in report
    assert "DIFFERENT: 1 of" in report


def test_a_changed_visit_also_changes_the_rows_that_point_to_it(tmp_path):
    a, b = write_pair(
        tmp_path, lambda rows: b_row(rows, "visit_occurrence", 3).update(visit_end_date=D(2020, 3, 5))
    )

    # the visit, its condition and its cost (the fact "cost of that visit" changed with it)
    assert differing(compare_cdms(a, b)) == {
        "visit_occurrence": (1, 1),
        "condition_occurrence": (1, 1),
        "cost": (1, 1),
    }


def test_one_extra_copy_of_a_row_differs_by_exactly_one(tmp_path):
    def copy_condition(rows: Rows) -> None:
        rows["condition_occurrence"].append(
            {**b_row(rows, "condition_occurrence", 1), "condition_occurrence_id": 5000}
        )

    result = compare_cdms(*write_pair(tmp_path, copy_condition))

    assert differing(result) == {"condition_occurrence": (0, 1)}
    table = result.table("condition_occurrence")
    assert (table.rows_a, table.rows_b) == (3, 4)
    assert table.sample_a == ()
    assert [r["condition_occurrence_id"] for r in table.sample_b] in (
        [5000],
        [renumbered("condition_occurrence", 1)],  # either copy is the extra one
    )


def test_a_condition_moved_to_another_person_differs(tmp_path):
    a, b = write_pair(
        tmp_path,
        lambda rows: b_row(rows, "condition_occurrence", 3).update(person_id=renumbered("person", 1)),
    )

    assert differing(compare_cdms(a, b)) == {"condition_occurrence": (1, 1)}


def test_a_preceding_visit_pointing_elsewhere_differs_in_that_visit_only(tmp_path):
    a, b = write_pair(
        tmp_path,
        lambda rows: b_row(rows, "visit_occurrence", 2).update(
            preceding_visit_occurrence_id=renumbered("visit_occurrence", 3)
        ),
    )

    result = compare_cdms(a, b)

    assert differing(result) == {"visit_occurrence": (1, 1)}
    assert [r["visit_occurrence_id"] for r in result.table("visit_occurrence").sample_a] == [2]


def test_a_cost_pointing_to_another_event_differs(tmp_path):
    a, b = write_pair(
        tmp_path,
        lambda rows: b_row(rows, "cost", 1).update(cost_event_id=renumbered("condition_occurrence", 1)),
    )

    assert differing(compare_cdms(a, b)) == {"cost": (1, 1)}


def test_an_observation_pointing_to_another_event_differs(tmp_path):
    a, b = write_pair(
        tmp_path,
        lambda rows: b_row(rows, "observation", 1).update(
            observation_event_id=renumbered("condition_occurrence", 2)
        ),
    )

    assert differing(compare_cdms(a, b)) == {"observation": (1, 1)}


def test_a_fact_relationship_pointing_to_another_fact_differs(tmp_path):
    def relate_condition_3(rows: Rows) -> None:
        rows["fact_relationship"][0]["fact_id_2"] = renumbered("condition_occurrence", 3)

    a, b = write_pair(tmp_path, relate_condition_3)

    assert differing(compare_cdms(a, b)) == {"fact_relationship": (1, 1)}


def test_a_reference_to_no_row_is_compared_by_its_raw_id(tmp_path):
    def dangle(visit_id: int) -> Callable[[Rows], None]:
        # condition 3: no other row points to it
        return lambda rows: rows["condition_occurrence"][2].update(visit_occurrence_id=visit_id)

    a = write_cdm(tmp_path / "a.duckdb", _changed(facts(original), dangle(77)))
    same_raw_id = write_cdm(tmp_path / "b.duckdb", _changed(facts(renumbered), dangle(77)))
    other_raw_id = write_cdm(tmp_path / "c.duckdb", _changed(facts(renumbered), dangle(78)))

    assert compare_cdms(a, same_raw_id).same
    assert differing(compare_cdms(a, other_raw_id)) == {"condition_occurrence": (1, 1)}


def test_a_duplicated_id_multiplies_no_rows_and_references_to_it_keep_their_raw_id(tmp_path):
    def duplicate_person_1(rows: Rows) -> None:
        rows["person"].append({**rows["person"][0], "person_source_value": "P1 again"})

    a = write_cdm(tmp_path / "a.duckdb", _changed(facts(original), duplicate_person_1))
    b = write_cdm(tmp_path / "b.duckdb", _changed(facts(renumbered), duplicate_person_1))

    itself = compare_cdms(a, a)
    assert itself.same
    assert (itself.table("person").rows_a, itself.table("condition_occurrence").rows_a) == (4, 3)
    # person 1's rows: which of the two persons they belong to is unknown, so raw ids 1 and 893 differ
    assert differing(compare_cdms(a, b)) == {
        "visit_occurrence": (2, 2),
        "condition_occurrence": (2, 2),
        "cost": (1, 1),
        "observation": (1, 1),
        "fact_relationship": (1, 1),
    }


# --- which tables -------------------------------------------------------------------------------


def test_cdm_source_and_the_vocabulary_are_compared_only_when_named(tmp_path):
    a, b = write_pair(
        tmp_path, lambda rows: rows["concept"].append({**rows["concept"][0], "concept_id": 1147128})
    )

    assert compare_cdms(a, b).same  # cdm_source differs by build date, concept by one row

    named = compare_cdms(a, b, tables=["cdm_source", "concept"])
    assert differing(named) == {"cdm_source": (1, 1), "concept": (0, 1)}
    assert [r["concept_id"] for r in named.table("concept").sample_b] == [1147128]


def test_named_tables_are_compared_through_the_tables_they_point_to(tmp_path):
    a, b = write_pair(tmp_path, lambda rows: b_row(rows, "person", 2).update(year_of_birth=1981))

    result = compare_cdms(a, b, tables=["condition_occurrence"])

    assert [t.table for t in result.tables] == ["condition_occurrence"]
    assert differing(result) == {"condition_occurrence": (1, 1)}  # person 2's one condition


def test_a_table_on_one_side_only_differs_by_its_rows(tmp_path):
    a, b = write_pair(tmp_path)
    with duckdb.connect(str(b)) as con:
        con.execute(
            "CREATE TABLE cdm.site_flag AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(person_id, flag)"
        )

    result = compare_cdms(a, b)

    flags = result.table("site_flag")
    assert (flags.rows_a, flags.rows_b, flags.only_in_a, flags.only_in_b) == (None, 2, 0, 2)
    assert not flags.same and not result.same
    assert "absent from A" in format_comparison(result)


def test_a_table_unknown_to_the_spec_is_compared_on_all_its_columns(tmp_path):
    a, b = write_pair(tmp_path)
    for path, ids in ((a, original), (b, renumbered)):
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE cdm.site_flag (person_id INTEGER, flag VARCHAR)")
            con.execute("INSERT INTO cdm.site_flag VALUES (?, 'smoker'), (NULL, NULL)", [ids("person", 1)])

    result = compare_cdms(a, b)

    flags = result.table("site_flag")
    assert (flags.only_in_a, flags.only_in_b) == (1, 1)  # the id is a value here; the NULL row matches
    assert flags.notes == ("not in the CDM spec: all columns compared as values, ids included",)
    assert "not in the CDM spec" in format_comparison(result)


def test_tables_are_hashed_after_the_tables_they_point_to():
    spec = gcdm_spec()
    plans = {t.name: _plan(t.name, [f.name for f in t.fields], spec) for t in spec.tables}

    order = _hash_order([t.name for t in spec.tables], plans)

    chain = ["location", "care_site", "provider", "person", "visit_occurrence", "visit_detail"]
    chain += ["condition_occurrence", "variant_occurrence"]
    assert [order.index(name) for name in chain] == sorted(order.index(name) for name in chain)
    assert order.index("specimen") < order.index("variant_occurrence")


def test_a_file_without_cdm_tables_is_an_error(tmp_path):
    a, _ = write_pair(tmp_path)
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()

    with pytest.raises(ConfigError, match="expected tables in schema cdm"):
        compare_cdms(a, empty)


def test_a_table_in_neither_file_is_an_error(tmp_path):
    a, b = write_pair(tmp_path)

    with pytest.raises(ConfigError, match="no_such_table"):
        compare_cdms(a, b, tables=["no_such_table"])


def test_the_limit_caps_the_rows_shown(tmp_path):
    def three_copies(rows: Rows) -> None:
        rows["condition_occurrence"] += [
            {**b_row(rows, "condition_occurrence", 1), "condition_occurrence_id": 5000 + n} for n in range(3)
        ]

    result = compare_cdms(*write_pair(tmp_path, three_copies), limit=2)

    table = result.table("condition_occurrence")
    assert table.only_in_b == 3
    # any of B's four identical copies may stand for the three extra ones
    copies = {renumbered("condition_occurrence", 1), 5000, 5001, 5002}
    assert len(table.sample_b) == 2 and {r["condition_occurrence_id"] for r in table.sample_b} <= copies
    assert "rows only in B (2 of 3;" in format_comparison(result)


def test_both_files_are_left_as_they_were(tmp_path):
    a, b = write_pair(tmp_path)
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)]

    compare_cdms(a, b)

    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)] == before


# --- the command --------------------------------------------------------------------------------


def test_rwe_compare_exits_0_when_same_and_1_when_different(tmp_path, capsys):
    for name in ("same", "changed"):
        (tmp_path / name).mkdir()
    a, b = write_pair(tmp_path / "same")
    assert main(["compare", str(a), str(b)]) == 0
    assert "SAME" in capsys.readouterr().out

    a, b = write_pair(
        tmp_path / "changed",
        lambda rows: b_row(rows, "condition_occurrence", 1).update(condition_concept_id=1),
    )
    assert main(["compare", str(a), str(b), "--table", "condition_occurrence", "--limit", "1"]) == 1
    out = capsys.readouterr().out
    assert "condition_occurrence" in out and "condition_concept_id=1 " in out and "DIFFERENT" in out


def test_rwe_compare_exits_2_when_a_file_is_missing(tmp_path, capsys):
    a, _ = write_pair(tmp_path)

    assert main(["compare", str(a), str(tmp_path / "missing.duckdb")]) == 2
    assert "missing.duckdb" in capsys.readouterr().err
