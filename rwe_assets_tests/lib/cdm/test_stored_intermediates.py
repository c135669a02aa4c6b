"""The CDM build's large intermediates as compressed Parquet files and views (lib/cdm/intermediates.py):
the rows, the column types and the parameters of the temporary table the SQL names, in a file."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from rwe_assets.lib.cdm import intermediates

# sum() of BIGINT is a HUGEINT and a CASE over literals may be an ENUM: Parquet keeps neither
QUERY = """
-- an intermediate of the build, as lib/sql/cdm writes it
CREATE OR REPLACE TEMP TABLE {name} AS
SELECT person, sum(amount) AS total, $label AS label, 'a'::ENUM('a', 'b') AS kind
FROM (VALUES (1, 10::BIGINT), (1, 5), (2, 7)) t(person, amount)
GROUP BY person
"""
VALUES = {"label": "x"}


def kinds(con, name: str) -> dict[str, str]:
    return dict(row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall())


def objects(con) -> dict[str, str]:
    rows = con.execute(
        "SELECT table_name, 'table' FROM duckdb_tables() WHERE temporary "
        "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE temporary AND NOT internal"
    ).fetchall()
    return dict(rows)


def test_a_stored_intermediate_is_a_view_of_a_zstd_file_with_the_table_s_rows_and_types(tmp_path):
    with duckdb.connect() as con:
        intermediates.execute(con, QUERY.format(name="mapped_event"), VALUES)  # no directory: a table
        table = (kinds(con, "mapped_event"), sorted(con.execute("FROM mapped_event").fetchall()))
        con.execute("DROP TABLE mapped_event")
        intermediates.use(con, tmp_path)
        intermediates.execute(con, QUERY.format(name="mapped_event"), VALUES)
        assert objects(con) == {"mapped_event": "view"}
        assert (kinds(con, "mapped_event"), sorted(con.execute("FROM mapped_event").fetchall())) == table
    assert table[0]["total"] == "HUGEINT" and table[0]["kind"].startswith("ENUM")
    written = pq.ParquetFile(intermediates.directory(tmp_path) / "mapped_event.parquet")
    assert written.metadata.row_group(0).column(0).compression == "ZSTD"
    intermediates.clear(tmp_path)
    assert not intermediates.directory(tmp_path).exists()


def test_a_stored_intermediate_replaces_a_table_of_its_name_and_other_names_stay_tables(tmp_path):
    with duckdb.connect() as con:
        intermediates.use(con, tmp_path)
        con.execute("CREATE TEMP TABLE visit_input AS SELECT 1 AS old")
        intermediates.execute(con, QUERY.format(name="visit_input"), VALUES)
        intermediates.execute(con, QUERY.format(name="code_map"), VALUES)  # small: not stored
        assert objects(con) == {"visit_input": "view", "code_map": "table"}
        assert "old" not in kinds(con, "visit_input")


@pytest.mark.parametrize(
    "statement", ["CREATE TEMP TABLE mapped_event AS SELECT 1", "SELECT 1 AS mapped_event"]
)
def test_other_statements_run_as_written(tmp_path, statement):
    with duckdb.connect() as con:
        intermediates.use(con, tmp_path)
        intermediates.execute(con, statement, {})
    assert not intermediates.directory(tmp_path).exists()


def test_a_table_made_by_code_is_moved_to_a_file_when_stored(tmp_path):
    """An id map's table (lib/id_map.py) once complete: the same rows and types, read from its file."""
    with duckdb.connect() as con:
        intermediates.use(con, tmp_path)
        for name in ("ids_measurement", "ids_location"):  # a map that grows with events; one that does not
            con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT 'k' || i AS natural_key, i::INTEGER AS id FROM range(5) t(i)"
            )
        before = kinds(con, "ids_measurement"), sorted(con.execute("FROM ids_measurement").fetchall())
        intermediates.keep(con, "ids_measurement", "ids_location")
        assert objects(con) == {"ids_measurement": "view", "ids_location": "table"}
        assert (
            kinds(con, "ids_measurement"),
            sorted(con.execute("FROM ids_measurement").fetchall()),
        ) == before
    assert (intermediates.directory(tmp_path) / "ids_measurement.parquet").is_file()


def test_a_file_run_in_parts_reads_each_part_s_own_rows_and_keeps_every_part(tmp_path, monkeypatch):
    lines = "CREATE TEMP TABLE line AS SELECT range AS line_id, range % 50 AS event FROM range(100)"
    file = [
        """CREATE OR REPLACE TEMP TABLE cost_target AS
        SELECT DISTINCT event FROM line WHERE hash(event) % $parts = $part""",
        # each line of the part finds its event in the part's cost_target, and only there
        """CREATE OR REPLACE TEMP TABLE cost_input AS
        SELECT l.*, t.event AS found, $part AS part FROM line l LEFT JOIN cost_target t USING (event)
        WHERE hash(l.event) % $parts = $part""",
    ]
    monkeypatch.setitem(intermediates.PARTS, "lines_in_parts", ("line", 30))
    with duckdb.connect() as con:
        con.execute(lines)
        intermediates.run(con, "lines_in_parts", file, {"part": 0, "parts": 1})  # no directory: whole
        whole = con.execute("SELECT line_id, found FROM cost_input ORDER BY 1").fetchall()
        intermediates.use(con, tmp_path)
        intermediates.run(con, "lines_in_parts", file, {"part": 0, "parts": 1})
        assert objects(con) == {"line": "table", "cost_target": "view", "cost_input": "view"}
        assert con.execute("SELECT line_id, found FROM cost_input ORDER BY 1").fetchall() == whole
        assert con.execute("SELECT count(DISTINCT part) FROM cost_input").fetchone() == (4,)  # 100 / 30
        assert con.execute("SELECT count(*) FROM cost_target").fetchone() == (50,)
    assert all(line[1] is not None for line in whole)
    written = sorted(p.name for p in intermediates.directory(tmp_path).iterdir())
    assert written == [f"{t}.part{p}.parquet" for t in ("cost_input", "cost_target") for p in range(4)]
