"""Tombstones over typed identifiers: an erased person sent again with only a document or a record
number in common (another source, another name spelling, no SSN column) is refused."""

import duckdb

from rwe_assets.lib.governance import tombstone

KEY = "k" * 32
IDS = "STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[]"


def _candidates(con) -> None:
    trailer = "_reason VARCHAR, _reason_field VARCHAR, record_key VARCHAR"
    con.execute(
        "CREATE TABLE cand_person_pii (source_system VARCHAR, source_person_id VARCHAR, given_name VARCHAR, "
        f"family_name VARCHAR, birth_date DATE, ssn VARCHAR, identifiers {IDS}, {trailer})"
    )
    con.execute(
        f"CREATE TABLE cand_person_source (source_system VARCHAR, source_person_id VARCHAR, {trailer})"
    )
    rows = [  # (source, id, given, family, dob, identifiers)
        (
            "a",
            "p1",
            "Ann",
            "Lee",
            "1970-02-03",
            "[{'type': 'passport', 'system': 'gb', 'value': 'X12 345 678'}, "
            "{'type': 'mrn', 'system': 'urn:hosp-a', 'value': '000123456'}]",
        ),
        # the same passport, written another way, no issuer, another family name: refused
        (
            "b",
            "q1",
            "Anne",
            "Smith",
            "1970-02-03",
            "[{'type': 'passport', 'system': NULL, 'value': 'x12345678'}]",
        ),
        # the same passport number with another birth date: a different person, kept
        ("b", "q2", "Bo", "Ng", "1981-07-09", "[{'type': 'passport', 'system': NULL, 'value': 'X12345678'}]"),
        # hospital A's MRN cited by a lab: refused; the same number of another hospital: kept
        ("c", "r1", None, None, None, "[{'type': 'mrn', 'system': 'URN:HOSP-A/', 'value': '123456'}]"),
        ("c", "r2", None, None, None, "[{'type': 'mrn', 'system': 'urn:hosp-b', 'value': '123456'}]"),
        # a record number without the system that assigned it says nothing: kept
        ("c", "r3", None, None, None, "[{'type': 'mrn', 'system': NULL, 'value': '123456'}]"),
    ]
    for source, pid, given, family, dob, ids in rows:
        con.execute(
            f"INSERT INTO cand_person_pii VALUES (?, ?, ?, ?, ?, NULL, {ids}::{IDS}, NULL, NULL, ?)",
            [source, pid, given, family, dob, pid],
        )


def test_documents_and_record_numbers_refuse_the_erased_person_under_another_identity(tmp_path):
    lake_dir = tmp_path / "lake"
    con = duckdb.connect()
    _candidates(con)
    tombstone.register(con, KEY)
    con.execute("CREATE VIEW erased AS SELECT * FROM cand_person_pii WHERE source_person_id = 'p1'")
    tokens = con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table()
    kinds = sorted(tokens.column("kind").to_pylist())
    assert kinds == ["document_dob", "name_dob", "record", "record_number"]
    assert tombstone.add(lake_dir, tokens, "e1") == 4

    assert tombstone.refuse_erased(con, lake_dir, KEY) == 3
    refused = con.execute(
        "SELECT source_person_id FROM cand_person_pii WHERE _reason = ? ORDER BY ALL", [tombstone.REASON]
    ).fetchall()
    assert refused == [("p1",), ("q1",), ("r1",)]


def test_a_relation_without_identifiers_still_gives_its_other_tokens(tmp_path):
    con = duckdb.connect()
    tombstone.register(con, KEY)
    con.execute(
        "CREATE VIEW v AS SELECT 'a' AS source_system, 'p1' AS source_person_id, '234-56-7891' AS ssn, "
        "DATE '1970-02-03' AS birth_date"
    )
    kinds = sorted(con.sql(tombstone.tokens_sql(con, "v")).to_arrow_table().column("kind").to_pylist())
    assert kinds == ["record", "ssn_dob"]


def test_a_number_of_no_declared_kind_gives_no_tombstone(tmp_path):
    """A shared number (a policy or household number) typed 'other' could name several people."""
    con = duckdb.connect()
    tombstone.register(con, KEY)
    con.execute(
        f"CREATE VIEW v AS SELECT 'a' AS source_system, 'p1' AS source_person_id, "
        f"[{{'type': 'policy', 'system': 'urn:plan', 'value': 'H-2231-77'}}]::{IDS} AS identifiers"
    )
    kinds = sorted(con.sql(tombstone.tokens_sql(con, "v")).to_arrow_table().column("kind").to_pylist())
    assert kinds == ["record"]
