"""Each normalization rule of docs/linkage.md on a hand-built value (NULL = never takes part in a match)."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib.linkage.tokens import nickname_forms, register_macros


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    register_macros(con)
    return con


def one(con, sql, *params):
    return con.execute(f"SELECT {sql}", list(params)).fetchone()[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Víctor493 ", "victor"),
        ("O'Brien-Smith", "obriensmith"),
        ("Mary Ann", "maryann"),
        ("Dr. John Jr.", "john"),
        ("UNKNOWN", None),
        ("Baby Girl", None),
        ("X", None),
        ("123", None),
        (None, None),
        ("王芳", "王芳"),  # other scripts kept as written, not transliterated
        ("Иван", "иван"),
    ],
)
def test_names(con, raw, expected):
    assert one(con, "lk_name(?)", raw) == expected


def test_first_word_is_the_call_name(con):
    assert one(con, "lk_first_word(?)", "Mary Ann") == "mary"
    assert one(con, "lk_first_word(?)", "Unknown") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1980-03-04", dt.date(1980, 3, 4)),
        ("19800304", dt.date(1980, 3, 4)),
        ("03/04/1980", dt.date(1980, 3, 4)),  # US order
        ("04.03.1980", dt.date(1980, 3, 4)),  # dotted European order
        ("2019-13-05", None),  # impossible month
        ("02/30/2019", None),  # impossible day
        ("1900-01-01", None),  # placeholder
        ("1901-01-01", None),
        ("1899-12-30", None),  # spreadsheet zero date
        ("1800-01-01", None),
        ("1850-06-01", dt.date(1850, 6, 1)),  # old, but a real date (historical registries)
        ("2031-01-01", None),  # after the reference day
        ("", None),
    ],
)
def test_birth_dates(con, raw, expected):
    assert one(con, "lk_date(?, DATE '2030-01-01')", raw) == expected


def test_swapped_date_only_where_it_is_another_date(con):
    assert one(con, "lk_swapped(DATE '1980-03-04')") == dt.date(1980, 4, 3)
    assert one(con, "lk_swapped(DATE '1980-03-03')") is None
    assert one(con, "lk_swapped(DATE '1980-03-24')") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("918-30-5931", "918305931"),
        ("999-99-9999", None),
        ("000-12-3456", None),
        ("666-12-3456", None),
        ("123-00-4567", None),
        ("123-45-0000", None),
        ("123-45-6789", None),
        ("12345", None),
    ],
)
def test_ssn(con, raw, expected):
    assert one(con, "lk_ssn(?)", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("555-223-5830", "5552235830"),
        ("+1 (555) 223-5830", "5552235830"),
        ("555-555-5555", None),
        ("0", None),
    ],
)
def test_phone(con, raw, expected):
    assert one(con, "lk_phone(?)", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("1830", "01830"), ("01830-1234", "01830"), ("00000", None), ("ABC", None)]
)
def test_zip(con, raw, expected):
    assert one(con, "lk_zip(?)", raw) == expected


def test_street_abbreviations_and_units(con):
    assert one(con, "lk_street(?)", "12 Oak Street Apt 4") == one(con, "lk_street(?)", "12 OAK ST.")
    assert one(con, "lk_street(?)", "9615 North Oak Terrace #2") == "9615 n oak ter"
    assert one(con, "lk_street(?)", "Unknown") is None


@pytest.mark.parametrize(
    ("raw", "expected"), [("F", "f"), ("female", "f"), ("Male", "m"), ("X", None), ("U", None)]
)
def test_sex(con, raw, expected):
    assert one(con, "lk_sex(?)", raw) == expected


def test_nickname_forms_come_from_the_public_list_only(monkeypatch, tmp_path):
    forms = set(nickname_forms())
    assert ("bob", "robert") in forms and ("robert", "robert") in forms
    assert ("chris", "christopher") in forms and ("chris", "christine") in forms
    # nothing but the packaged public list is read: point it at a one-row file and only that remains
    one_row = tmp_path / "names.csv"
    one_row.write_text("name1,relationship,name2\nrobert,has_nickname,bob\n")
    monkeypatch.setattr("rwe_assets.lib.linkage.tokens.NICKNAMES", one_row)
    assert nickname_forms() == [("bob", "robert"), ("robert", "robert")]


def test_runtime_linkage_reads_no_generator_file():
    package = Path(__file__).resolve().parents[3] / "rwe_assets" / "lib" / "linkage"
    sources = [p for p in package.rglob("*") if p.suffix in (".py", ".sql")]
    assert sources
    assert [p.name for p in sources if "synthetic" in p.read_text() and p.name != "generated.py"] == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Julia.Taylor@Mail.COM ", "julia.taylor@mail.com"),
        ("juliataylormail.com", "juliataylormail.com"),  # mistyped, still compared by its Bloom filter
        ("none@example.com", None),
        ("noemail@gmail.com", None),
        ("jt@example.org", None),
        ("unknown", None),
        ("12345678", None),
        (None, None),
    ],
)
def test_email(con, raw, expected):
    assert one(con, "lk_email(?)", raw) == expected


def test_email_user_only_for_a_well_formed_address(con):
    assert one(con, "lk_email_user(lk_email(?))", "Julia.Taylor@mail.com") == "julia.taylor"
    assert one(con, "lk_email_user(lk_email(?))", "juliataylormail.com") is None
    assert one(con, "lk_email_user(lk_email(?))", "jt@mail.com") is None  # too short to identify


def test_deletion_neighbourhood(con):
    assert sorted(one(con, "lk_deletions(?)", "noah")) == ["nah", "noa", "noah", "noh", "oah"]
    assert one(con, "lk_deletions(?)", "leo") == ["leo"]  # short values: only themselves
    shared = "len(list_intersect(lk_deletions(?), lk_deletions(?))) > 0"
    assert one(con, shared, "noah", "onah")  # transposition
    assert one(con, shared, "molly", "moly")  # deletion
    assert one(con, shared, "bradley", "bradlay")  # substitution
    assert not one(con, shared, "emma", "olivia")
    assert one(con, "lk_deletions(?)", None) is None
