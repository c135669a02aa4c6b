"""Driver's licence and passport numbers: normalized in any issuer's format, compared as identifiers
(a shared document links records whose names changed), placeholders never agree."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.tokens import register_macros

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Katherine",
    "family_name": "Oyelaran",
    "birth_date": "1971-08-23",
    "sex": "F",
    "address_line": "4 Birch Road",
    "zip": "02139",
    "_batch_id": "b1",
}
# the same woman years later: married name, moved house (same first name and birth date, which alone
# are not enough for a match)
LATER = {"family_name": "Whitfield", "address_line": "77 Harbor Lane", "zip": "60614"}
COLUMNS = ("source_system", "source_person_id", *BASE, "drivers_license", "passport")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s999-1234-5", "S99912345"),
        (" X 1234 5678 x ", "X12345678X"),
        ("AB 12 34 56 C", "AB123456C"),
        ("000000000", None),  # one repeated character
        ("123456789", None),  # a counting run
        ("ABCDEFG", None),  # no digit
        ("12A4", None),  # too short
        (None, None),
    ],
)
def test_identifiers_normalize_in_any_format(raw, expected):
    con = duckdb.connect()
    register_macros(con)
    assert con.execute("SELECT lk_ident(?)", [raw]).fetchone()[0] == expected


def _decision(tmp_path, left: dict, right: dict) -> str | None:
    rows = [{**BASE, **left, "source_system": "site_a", "source_person_id": "a"}]
    rows.append({**BASE, **LATER, **right, "source_system": "site_b", "source_person_id": "b"})
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    link(con, tmp_path, KEY)
    row = con.execute("SELECT decision FROM lk_pairs").fetchone()
    return row[0] if row else None


def test_a_shared_passport_links_records_whose_names_changed(tmp_path):
    assert _decision(tmp_path, {"passport": "X12345678X"}, {"passport": "x1234 5678x"}) == "match"


def test_a_shared_licence_links_records_whose_names_changed(tmp_path):
    assert _decision(tmp_path, {"drivers_license": "S99912345"}, {"drivers_license": "s999-12345"}) == "match"


def test_without_the_document_the_same_records_do_not_match(tmp_path):
    assert _decision(tmp_path, {"passport": "X12345678X"}, {"passport": "Y87654321Y"}) != "match"
    assert _decision(tmp_path / "none", {}, {}) != "match"


def test_a_placeholder_document_number_never_agrees(tmp_path):
    assert _decision(tmp_path, {"passport": "000000000"}, {"passport": "000000000"}) != "match"
