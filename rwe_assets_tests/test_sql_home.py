"""One home for the package's SQL (issue 28): every .sql file is under lib/sql/<layer>/, and every one
uses the loader's two kinds of holes only (`{name}` SQL text, `$name` values; lib/sql/README.md)."""

from __future__ import annotations

import re
from pathlib import Path

import rwe_assets
from rwe_assets.lib import sql_loader

PACKAGE = Path(rwe_assets.__file__).parent
SQL_HOME = PACKAGE / "lib" / "sql"
OTHER_STYLE = re.compile(r"\{\{\s*\w+\s*\}\}|(?<![\w'])@[a-z_]\w*|%\(\w+\)s")


def sql_outside(package: Path, home: Path) -> list[str]:
    return sorted(str(p.relative_to(package)) for p in package.rglob("*.sql") if home not in p.parents)


def other_placeholders(files) -> dict[str, str]:
    """File -> the first placeholder of another style in its code (comments and quoted text aside)."""
    found = {}
    for path in files:
        match = OTHER_STYLE.search(sql_loader.code_of(path.read_text(encoding="utf-8")))
        if match:
            found[path.name] = match.group(0)
    return found


def test_every_sql_file_is_in_the_sql_home():
    assert sql_outside(PACKAGE, SQL_HOME) == []
    assert {p.name for p in SQL_HOME.iterdir() if p.is_dir()} >= {
        "cdm",
        "staging",
        "linkage",
        "quality",
        "spark",
    }


def test_every_sql_file_uses_one_placeholder_style():
    files = list(PACKAGE.rglob("*.sql"))
    assert len(files) > 100
    assert other_placeholders(files) == {}


def test_the_checks_see_a_file_astray_and_another_style(tmp_path):
    (tmp_path / "lib" / "sql" / "cdm").mkdir(parents=True)
    (tmp_path / "lib" / "linkage" / "sql").mkdir(parents=True)
    fine = tmp_path / "lib" / "sql" / "cdm" / "a.sql"
    fine.write_text(
        "-- {{not_me}} in a comment\nSELECT {table}.x FROM {table} WHERE y = $value AND e LIKE '_%@_%'"
    )
    astray = tmp_path / "lib" / "linkage" / "sql" / "b.sql"
    astray.write_text("SELECT * FROM t WHERE d > @start_date")
    assert sql_outside(tmp_path, tmp_path / "lib" / "sql") == ["lib/linkage/sql/b.sql"]
    assert other_placeholders([fine, astray]) == {"b.sql": "@start_date"}


MACRO = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?MACRO\s+(\w+)\s*(.*)$", re.S | re.I)


def macros(texts: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Macro name -> (where, its parameters and body, comments dropped and blanks collapsed)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for where, text in texts.items():
        for statement in sql_loader.statements(text):
            code = "\n".join(sql_loader.LINE_COMMENT.sub("", line) for line in statement.splitlines())
            match = MACRO.match(code)
            if match:
                found.setdefault(match.group(1), []).append((where, " ".join(match.group(2).split())))
    return found


def test_every_macro_is_made_once_and_no_two_are_the_same():
    from rwe_assets.lib.staging.build import MACROS

    texts = {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.sql")}
    found = macros({**texts, "lib/staging/build.py MACROS": MACROS})
    assert len(found) > 40
    assert {name: places for name, places in found.items() if len(places) > 1} == {}
    bodies: dict[str, list[str]] = {}
    for name, [(_, body)] in found.items():
        bodies.setdefault(body, []).append(name)
    assert [names for names in bodies.values() if len(names) > 1] == []


def test_the_macro_check_sees_a_macro_made_twice_under_two_names():
    text = (
        "CREATE OR REPLACE MACRO a_failure(x) AS x IS NULL; -- one\n"
        "CREATE MACRO b_failure(x) AS\n    x   IS NULL;\nCREATE MACRO c(x) AS x + 1;"
    )
    found = macros({"f.sql": text})
    assert found["a_failure"][0][1] == found["b_failure"][0][1] == "(x) AS x IS NULL"
