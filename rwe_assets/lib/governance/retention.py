"""Retention: files that no current version of a lake Delta table reads, and the Delta log that
still names them, are deleted once they are older than the retention (RWE_RETENTION_DAYS).

A Delta table keeps every file a merge, delete or overwrite superseded, and its log keeps every commit,
so old rows (including rows deleted for a reason) stay readable by time travel until vacuumed. For
each table under the lake, apply_retention:
1. sets the table's own retention properties to the setting (delta.deletedFileRetentionDuration,
   delta.logRetentionDuration) when they differ, so any other Delta client honours the same period;
2. vacuums in full mode: superseded files whose removal is older than the retention, and files no
   commit ever added (a crashed write) older than it, are deleted; the current version's files stay;
3. writes a checkpoint and cleans up the log: commit files older than the retention, before that
   checkpoint, are deleted (time travel ends there).
The audit trail is treated the same: its rows are never superseded (compaction rewrites them
unchanged), and its hash chain, not its Delta log, is the evidence.

The caller holds the lake lock (a concurrent writer could commit a file vacuum has not seen yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

from rwe_assets.lib import lake

DELTA_LOG = "_delta_log"


@dataclass
class TableRetention:
    table: str  # path relative to the lake
    files_removed: int
    log_files_removed: int
    version: int


@dataclass
class RetentionReport:
    retention_days: int
    tables: list[TableRetention] = field(default_factory=list)

    @property
    def files_removed(self) -> int:
        return sum(t.files_removed for t in self.tables)

    @property
    def log_files_removed(self) -> int:
        return sum(t.log_files_removed for t in self.tables)

    def audit_what(self) -> dict:
        """What the audit row says: the setting and counts, never a value of the tables."""
        return {
            "retention_days": self.retention_days,
            "tables": len(self.tables),
            "files_removed": self.files_removed,
            "log_files_removed": self.log_files_removed,
            "tables_changed": [t.table for t in self.tables if t.files_removed or t.log_files_removed],
        }


def delta_tables(lake_dir: Path) -> list[Path]:
    """Every Delta table under the lake (a folder holding _delta_log), in path order."""
    return lake.tables_under(lake_dir)


def apply_retention(lake_dir: Path, retention_days: int) -> RetentionReport:
    if retention_days < 0:
        raise ValueError(f"retention_days: expected 0 or more, found {retention_days}")
    report = RetentionReport(retention_days)
    for path in delta_tables(lake_dir):
        report.tables.append(_retain(path, lake_dir, retention_days))
    return report


def _retain(path: Path, lake_dir: Path, days: int) -> TableRetention:
    log_before = _log_files(path)
    table = lake.open_table(path)
    _set_retention_properties(table, days)  # its commit may already clean the log (post-commit hook)
    removed = table.vacuum(
        retention_hours=days * 24, dry_run=False, enforce_retention_duration=False, full=True
    )
    table.create_checkpoint()
    table.cleanup_metadata()
    log_removed = len(log_before - _log_files(path))
    return TableRetention(path.relative_to(lake_dir).as_posix(), len(removed), log_removed, table.version())


def _set_retention_properties(table: DeltaTable, days: int) -> None:
    wanted = {
        "delta.deletedFileRetentionDuration": f"interval {days} days",
        "delta.logRetentionDuration": f"interval {days} days",
    }
    current = table.metadata().configuration
    if any(current.get(name) != value for name, value in wanted.items()):
        table.alter.set_table_properties(wanted)


def _log_files(path: Path) -> set[str]:
    """Commit and checkpoint files of the log (_last_checkpoint is rewritten, not removed)."""
    return lake.log_file_names(path)
