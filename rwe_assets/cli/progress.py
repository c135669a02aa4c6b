"""The quiet view of a run: a line per step as it starts and ends, read from the run's event log, and
the closing table of phases, rows and seconds."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field


@dataclass
class Phase:
    """One line of the closing table: a raw batch, or one step of the build."""

    name: str
    layer: str
    rows: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


# Build steps as the table names them; a step not listed keeps its own name.
STEP_LABELS = {
    "staging": "staging",
    "linkage": "linkage",
    "cdm_build": "cdm",
    "results__dq_check_results": "quality checks",
    "publish__rwe_duckdb": "publish",
}


class StepWatcher:
    """Follows one run's event log from a thread: prints a line as each step starts and ends (with
    `steps`) and every warning the run logs, and keeps rows (the materializations' dagster/row_count)
    and seconds per step for the closing table. Dagster's own console logger stays silent unless
    --verbose: this is the quiet view of the same events, without tracebacks (errors come at the end)."""

    def __init__(
        self, instance, run_id: str, steps: bool = True, warnings: bool = True, interval: float = 0.5
    ):
        self._instance, self._run_id, self._interval = instance, run_id, interval
        self._steps, self._warnings = steps, warnings
        self._cursor, self._started = None, {}
        self._phases: dict[str, Phase] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    EVENTS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_MATERIALIZATION")

    def __enter__(self) -> StepWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # what arrived after the last look

    def phases(self) -> list[Phase]:
        return list(self._phases.values())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._poll()

    def _poll(self) -> None:
        try:
            connection = self._instance.get_records_for_run(self._run_id, cursor=self._cursor)
        except Exception:  # the run is not stored yet, or storage is busy: look again next time
            return
        self._cursor = connection.cursor
        for record in connection.records:
            self._on_event(record.event_log_entry)

    def _on_event(self, entry) -> None:
        event = entry.dagster_event
        if event is None:  # a log line: warnings are shown (a step's ERROR comes back as its failure)
            if self._warnings and entry.level == logging.WARNING:
                print(f"  warning: {entry.step_key or 'run'}: {entry.user_message}", flush=True)
            return
        if event.event_type_value not in self.EVENTS or not self._steps:
            return
        step = event.step_key
        label = STEP_LABELS.get(step, step)
        phase = self._phases.setdefault(step, Phase(label, label))
        if event.event_type_value == "STEP_START":
            self._started[step] = entry.timestamp
            print(f"  {label} ...", flush=True)
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            rows = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            phase.rows += int(rows.value) if rows is not None else 0
        else:
            phase.seconds = entry.timestamp - self._started.get(step, entry.timestamp)
            outcome = "FAILED" if event.event_type_value == "STEP_FAILURE" else f"{phase.rows:,} rows"
            print(f"  {label}: {outcome} ({phase.seconds:.1f} s)", flush=True)


def print_table(phases: list[Phase]) -> None:
    raw = [phase for phase in phases if phase.layer == "raw"]
    rows = [Phase(f"raw ({len(raw)} batches)", "raw", sum(p.rows for p in raw), sum(p.seconds for p in raw))]
    rows += [phase for phase in phases if phase.layer != "raw"]
    width = max(len(phase.name) for phase in rows) + 2
    print(f"\n{'phase':<{width}}{'rows':>14}{'seconds':>10}")
    for phase in rows:
        status = "  FAILED" if phase.errors else ""
        print(f"{phase.name:<{width}}{phase.rows:>14,}{phase.seconds:>10.1f}{status}")
    print(f"{'total':<{width}}{'':>14}{sum(phase.seconds for phase in rows):>10.1f}")
