"""The result of a comparison and its text: a summary line per table, then each differing table's rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TableComparison:
    """One table on both sides. Rows are counted with their copies: a row held twice in A and once in B
    is one row only in A."""

    table: str
    rows_a: int | None  # None: the table is absent from A
    rows_b: int | None
    only_in_a: int
    only_in_b: int
    sample_a: tuple[dict[str, Any], ...]  # up to `limit` of the rows only in A, original values
    sample_b: tuple[dict[str, Any], ...]
    columns_only_in_a: tuple[str, ...] = ()
    columns_only_in_b: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return (
            self.rows_a is not None
            and self.rows_b is not None
            and self.only_in_a == self.only_in_b == 0
            and not self.columns_only_in_a
            and not self.columns_only_in_b
        )


@dataclass(frozen=True)
class CdmComparison:
    path_a: Path
    path_b: Path
    tables: tuple[TableComparison, ...]

    @property
    def same(self) -> bool:
        return all(t.same for t in self.tables)

    @property
    def differing(self) -> tuple[TableComparison, ...]:
        return tuple(t for t in self.tables if not t.same)

    def table(self, name: str) -> TableComparison:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(f"comparison: no table {name!r}")


def format_comparison(comparison: CdmComparison) -> str:
    """One summary line per table, then each differing table's rows (up to the limit per side)."""
    lines = [f"A: {comparison.path_a}", f"B: {comparison.path_b}", ""]
    lines.append(f"{'table':<28}{'rows A':>10}{'rows B':>10}{'only A':>10}{'only B':>10}")
    lines += [_summary_line(t) for t in comparison.tables]
    for table in comparison.tables:
        lines += _details(table)
    lines += ["", _verdict(comparison)]
    return "\n".join(lines)


def _rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _count(rows: int | None) -> str:
    return "absent" if rows is None else str(rows)


def _summary_line(table: TableComparison) -> str:
    return (
        f"{table.table:<28}{_count(table.rows_a):>10}{_count(table.rows_b):>10}"
        f"{table.only_in_a:>10}{table.only_in_b:>10}  {'same' if table.same else 'DIFFERENT'}"
    )


def _details(table: TableComparison) -> list[str]:
    if table.same and not table.notes:
        return []
    lines = [
        "",
        f"{table.table}: {_rows_text(table.only_in_a)} only in A, {_rows_text(table.only_in_b)} only in B",
    ]
    lines += [f"  note: {note}" for note in table.notes]
    for side, rows in (("A", table.rows_a), ("B", table.rows_b)):
        if rows is None:
            lines.append(f"  absent from {side}")
    if table.columns_only_in_a:
        lines.append(f"  columns only in A: {', '.join(table.columns_only_in_a)}")
    if table.columns_only_in_b:
        lines.append(f"  columns only in B: {', '.join(table.columns_only_in_b)}")
    lines += _sample_lines("A", table.sample_a, table.only_in_a)
    lines += _sample_lines("B", table.sample_b, table.only_in_b)
    return lines


def _sample_lines(side: str, sample: Sequence[Mapping[str, Any]], total: int) -> list[str]:
    if not sample:
        return []
    shown = f"{len(sample)} of {total}" if len(sample) < total else str(total)
    lines = [f"  rows only in {side} ({shown}; NULL columns left out):"]
    for row in sample:
        lines.append("    " + " ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    return lines


def _verdict(comparison: CdmComparison) -> str:
    if comparison.same:
        return f"SAME: the {len(comparison.tables)} tables compared hold the same facts"
    names = ", ".join(t.table for t in comparison.differing)
    return f"DIFFERENT: {len(comparison.differing)} of {len(comparison.tables)} tables differ: {names}"
