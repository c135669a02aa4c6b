"""One constant per file name (issue 28): a file the package writes or reads is named by one string
literal in the package, which every other module imports (lib/warehouse_files.py, lib/truth_files.py,
lib/publish.py, ...), so renaming it is one edit and two modules cannot disagree on it."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import rwe_assets

PACKAGE = Path(rwe_assets.__file__).parent
EXTENSIONS = (
    "duckdb",
    "json",
    "csv",
    "yaml",
    "yml",
    "sql",
    "lock",
    "env",
    "parquet",
    "ndjson",
    "vcf",
    "gz",
    "txt",
)
FILE_NAME = re.compile(rf"^[\w.-]+\.({'|'.join(EXTENSIONS)})$")
# Equal names of different files, each named once in its own folder: OHDSI ships DQD's threshold
# files (lib/spec/dqd_v5.4) under the names of the CDM spec's own (lib/spec/omop_cdm_5.4).
DIFFERENT_FILES = {"OMOP_CDMv5.4_Table_Level.csv", "OMOP_CDMv5.4_Field_Level.csv"}


def is_file_name(text: str) -> bool:
    """A bare file name ('build.duckdb', '.rwe-lake.lock'), not a suffix ('.csv.gz', '.000.ndjson')."""
    parts = text.lstrip(".").split(".")
    return bool(FILE_NAME.match(text)) and not all(p in EXTENSIONS or p.isdigit() for p in parts)


def file_name_literals(folder: Path) -> dict[str, list[str]]:
    """Every string literal of the package's code that is a bare file name -> where it is written."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and is_file_name(node.value):
                found[node.value].append(f"{path.relative_to(folder)}:{node.lineno}")
    return found


def test_each_file_name_is_spelled_once():
    spelled_twice = {
        name: places
        for name, places in file_name_literals(PACKAGE).items()
        if len(places) > 1 and name not in DIFFERENT_FILES
    }
    assert spelled_twice == {}


def test_the_check_sees_a_name_spelled_twice(tmp_path):
    (tmp_path / "a.py").write_text('BUILD = "build.duckdb"\n')
    (tmp_path / "b.py").write_text('path = folder / "build.duckdb"\nnote = "a build.duckdb of its own"\n')
    (tmp_path / "c.py").write_text('SUFFIXES = (".csv.gz", ".000.ndjson")\n')
    assert file_name_literals(tmp_path) == {"build.duckdb": ["a.py:1", "b.py:1"]}


def test_the_different_files_of_one_name_are_in_two_folders():
    for name in DIFFERENT_FILES:
        assert (PACKAGE / "lib" / "spec" / "omop_cdm_5.4" / name).is_file()
        assert (PACKAGE / "lib" / "spec" / "dqd_v5.4" / name).is_file()
