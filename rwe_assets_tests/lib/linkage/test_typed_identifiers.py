"""Typed identifiers (national id, MRN, member id, driver's licence, passport): compared within one type
and system only, as keyed tokens, with a one-typo level, and found by a blocking pass of their own.
Records are hand-written person_pii rows with staging's `identifiers` list of {type, system, value}."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import model
from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.tokens import PII_TYPES, build_tokens

KEY = "test-key-for-linkage-tests"
HOSPITAL = "http://hospital.example.org/mrn"
CLINIC = "http://clinic.example.org/patients"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
MA_DL = "urn:oid:2.16.840.1.113883.4.3.25"
NY_DL = "urn:oid:2.16.840.1.113883.4.3.36"
IDENTIFIERS = pa.list_(pa.struct([("type", pa.string()), ("system", pa.string()), ("value", pa.string())]))


def ident(type_: str, system: str | None, value: str) -> dict:
    return {"type": type_, "system": system, "value": value}


def _pii(con, left: list[dict], right: list[dict], **extra) -> None:
    rows = [("site_a", "a", left), ("site_b", "b", right)]
    table = {
        "source_system": pa.array([r[0] for r in rows]),
        "source_person_id": pa.array([r[1] for r in rows]),
        "identifiers": pa.array([r[2] for r in rows], type=IDENTIFIERS),
        "_batch_id": pa.array(["b1", "b1"]),
    }
    for column, values in extra.items():
        table[column] = pa.array(values)
    con.register("person_pii", pa.table(table))


def level(left: list[dict], right: list[dict], **extra) -> str:
    """The label of the identifier comparison level the pair (left, right) reaches."""
    con = duckdb.connect()
    _pii(con, left, right, **extra)
    build_tokens(con, KEY)
    comparison = next(c for c in model.comparisons() if c["output_column_name"] == "identifier")
    columns = [r[0] for r in con.execute("DESCRIBE lk_tokens").fetchall()]
    side = {s: ", ".join(f"{c} AS {c}_{s}" for c in columns) for s in ("l", "r")}
    con.execute(
        f"CREATE TEMP TABLE pair AS SELECT * FROM (SELECT {side['l']} FROM lk_tokens WHERE record_id = 'site_a|a') "
        f"CROSS JOIN (SELECT {side['r']} FROM lk_tokens WHERE record_id = 'site_b|b')"
    )
    for item in comparison["comparison_levels"]:
        sql = item["sql_condition"]
        if sql == "ELSE" or con.execute(f"SELECT coalesce(({sql}), false) FROM pair").fetchone()[0]:
            return item["label_for_charts"]
    raise AssertionError("no level")


SAME = "same identifier (type, system, value)"
TYPO = "one character apart"
ELSE = "else (same type and issuer, different number)"


def test_the_same_mrn_of_one_system_agrees_whatever_its_formatting():
    # two FHIR Patients of one hospital: the MRN zero-padded and dashed in one, bare in the other
    left = [ident("mrn", HOSPITAL, "00-012-3456")]
    right = [ident("MRN", HOSPITAL + "/", "123456")]
    assert level(left, right) == SAME


def test_the_same_mrn_value_from_two_systems_does_not_agree():
    left, right = [ident("mrn", HOSPITAL, "123456")], [ident("mrn", CLINIC, "123456")]
    assert level(left, right) == "null"  # not comparable: another authority's number


def test_different_mrns_of_one_system_are_no_evidence_against():
    # a person registered twice has two MRNs: record numbers count only when they agree
    assert level([ident("mrn", HOSPITAL, "123456")], [ident("mrn", HOSPITAL, "654321")]) == "null"


def test_consecutive_mrns_are_not_a_typo():
    # record numbers are assigned in sequence: a family registered together gets 100234 and 100235
    assert level([ident("mrn", HOSPITAL, "100234")], [ident("mrn", HOSPITAL, "100235")]) == "null"


def test_a_licence_with_two_neighbouring_digits_swapped_agrees_at_the_typo_level():
    left, right = (
        [ident("drivers_license", MA_DL, "S99912345")],
        [ident("drivers_license", MA_DL, "S99921345")],
    )
    assert level(left, right) == TYPO
    # one digit wrong, one dropped: the same level; two digits wrong: a different licence
    assert level(left, [ident("drivers_license", MA_DL, "S99912845")]) == TYPO
    assert level(left, [ident("drivers_license", MA_DL, "S9991245")]) == TYPO
    assert level(left, [ident("drivers_license", MA_DL, "S99962845")]) == ELSE


def test_licences_of_two_issuers_never_agree_but_an_unknown_issuer_may():
    left = [ident("drivers_license", MA_DL, "S99912345")]
    assert level(left, [ident("drivers_license", NY_DL, "S99912345")]) == "null"
    assert level(left, [ident("drivers_license", NY_DL, "S99921345")]) == "null"  # nor at the typo level
    assert level(left, [ident("drivers_license", None, "s999-12345")]) == SAME  # Synthea CSV: no issuer
    assert (
        level([ident("drivers_license", None, "S99912345")], [], drivers_license=[None, "S99912345"]) == SAME
    )


def test_a_non_us_national_id_agrees_within_its_country_only():
    nhs = [ident("national_id", NHS, "485 777 3456")]
    assert level(nhs, [ident("national_id", NHS, "4857773456")]) == SAME
    assert level(nhs, [ident("national_id", NHS, "4857773465")]) == TYPO
    assert level(nhs, [ident("national_id", NHS, "9434765919")]) == ELSE  # another person's number
    assert level(nhs, [ident("national_id", BSN, "4857773456")]) == "null"  # another country's


def test_a_us_ssn_among_the_identifiers_feeds_the_ssn_comparison_not_this_one():
    con = duckdb.connect()
    ssn = [ident("national_id", "http://hl7.org/fhir/sid/us-ssn", "999-12-3456")]
    _pii(con, ssn, [ident("national_id", "us-ssn", "999123456")])
    build_tokens(con, KEY)
    rows = con.execute("SELECT t_ssn, t_id_offer FROM lk_tokens ORDER BY record_id").fetchall()
    assert rows[0][0] is not None and rows[0][0] == rows[1][0]
    assert rows[0][1] is None and rows[1][1] is None


def test_placeholders_and_record_numbers_without_a_system_never_agree():
    assert level([ident("passport", None, "000000000")], [ident("passport", None, "000000000")]) == "null"
    assert level([ident("mrn", None, "123456")], [ident("mrn", None, "123456")]) == "null"


def test_no_identifier_value_appears_in_the_tokens():
    con = duckdb.connect()
    _pii(con, [ident("mrn", HOSPITAL, "MRN777123")], [ident("passport", None, "X1234567X")])
    build_tokens(con, KEY)
    dump = str(con.execute("SELECT * FROM lk_tokens").fetchall())
    assert "777123" not in dump and "1234567" not in dump and "hospital" not in dump


def test_untyped_columns_stay_optional_for_callers():
    assert PII_TYPES["identifiers"].startswith("STRUCT(")


BASE = {"given_name": "Katherine", "birth_date": "1971-08-23", "sex": "F"}


def _linked(tmp_path, left: dict, right: dict) -> tuple[str | None, bool]:
    """(decision of the pair, whether it was compared at all) for two records of one woman whose family
    name and address changed (first name and birth date alone do not make a match)."""
    rows = [
        {
            **BASE,
            "family_name": "Oyelaran",
            "zip": "02139",
            **left,
            "source_system": "site_a",
            "source_person_id": "a",
        },
        {
            **BASE,
            "family_name": "Whitfield",
            "zip": "60614",
            **right,
            "source_system": "lab",
            "source_person_id": "b",
        },
    ]
    columns = ["source_system", "source_person_id", "given_name", "family_name", "birth_date", "sex", "zip"]
    table = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns}
    table["identifiers"] = pa.array([r.get("identifiers") for r in rows], type=IDENTIFIERS)
    table["_batch_id"] = pa.array(["b1", "b1"])
    con = duckdb.connect()
    con.register("person_pii", pa.table(table))
    link(con, tmp_path, KEY)
    compared = con.execute("SELECT count(*) FROM lk_scored").fetchone()[0] > 0
    row = con.execute("SELECT decision FROM lk_pairs").fetchone()
    return (row[0] if row else None), compared


def test_a_lab_order_citing_the_sites_mrn_links_to_the_site_record(tmp_path):
    site = {"identifiers": [ident("mrn", "site_a", "3edac2e3-d223-6fae-d515-daf96ef6bc76")]}
    lab = {"identifiers": [ident("mrn", "site_a", "3EDAC2E3D2236FAED515DAF96EF6BC76")]}
    assert _linked(tmp_path, site, lab)[0] == "match"
    other = {"identifiers": [ident("mrn", "site_b", "3edac2e3-d223-6fae-d515-daf96ef6bc76")]}
    assert _linked(tmp_path / "other", site, other)[0] != "match"


def test_records_sharing_only_an_identifier_are_compared(tmp_path):
    # nothing else in common (another birth date, another first name): only the identifier pass finds them
    left = {
        "identifiers": [ident("passport", None, "X1234567X")],
        "given_name": "Kate",
        "birth_date": "1971-03-08",
    }
    right = {"identifiers": [ident("passport", None, "x1234567x")]}
    assert _linked(tmp_path, left, right)[1]
    assert not _linked(tmp_path / "none", {**left, "identifiers": None}, {**right, "identifiers": None})[1]


def test_the_identifier_blocking_pass_explodes_the_offered_tokens():
    [rule] = [r for r in model.BLOCKING_RULES if isinstance(r, dict) and "t_id_offer" in r["blocking_rule"]]
    assert rule["arrays_to_explode"] == ["t_id_offer"]


def test_a_later_batch_meets_the_index_through_the_identifier_pass(tmp_path):
    """Scored against the kept records (predict_between): the exploded identifier pass finds the pair
    there too."""
    mrn = "3edac2e3-d223-6fae-d515-daf96ef6bc76"
    rows = [
        ("site_a", "a", "Katherine", "Oyelaran", "b1", [ident("mrn", "site_a", mrn)]),
        ("lab", "b", "Kate", "Whitfield", "b2", [ident("mrn", "site_a", mrn.upper())]),
    ]
    con = duckdb.connect()
    columns = ("source_system", "source_person_id", "given_name", "family_name", "_batch_id")
    table = {c: pa.array([r[i] for r in rows]) for i, c in enumerate(columns)}
    table["identifiers"] = pa.array([r[5] for r in rows], type=IDENTIFIERS)
    con.register("all_pii", pa.table(table))
    con.execute("CREATE TEMP TABLE person_pii AS SELECT * FROM all_pii WHERE _batch_id = 'b1'")
    link(con, tmp_path, KEY)
    con.execute("CREATE OR REPLACE TEMP TABLE person_pii AS SELECT * FROM all_pii")
    result = link(con, tmp_path, KEY)
    assert result.counts["full_relink"] == 0
    # names that share nothing exact: compared only through the identifier, which weighs in at its level
    [(weight,)] = con.execute("SELECT mw_identifier FROM lk_scored WHERE record_id_l = 'lab|b'").fetchall()
    assert weight > 10
