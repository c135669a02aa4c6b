"""One writer per lake: a lock file in the data directory, held for every write to the lake and for a
whole build.

The lock is `<data_dir>/.rwe-lake.lock`. Its holder keeps an exclusive `flock` on it and writes who it
is into it (pid, host, process start time, what it does, when it started and when it last said it was
alive), so a second process can say who holds the lake while it waits.

Stale-lock rule:
- Same host: the kernel drops a `flock` when its process dies (SIGKILL included), so a dead owner's
  lock is taken over at once; the file still names the dead owner, and the new holder says so.
- Another host (a data directory on a shared file system, where `flock` may not reach across hosts):
  the owner record is trusted while its heartbeat is younger than `STALE_AFTER_SECONDS` (the holder
  refreshes it every `HEARTBEAT_SECONDS` from a background thread); an older record is expired and
  taken over.

A lake on object storage (RWE_LAKE_URI=s3://..., lib/lake.py): the lock file stays in the local data
directory, so it orders the writers that share that data directory (the Dagster daemon, the UI's runs
and the `rwe` commands of one host), as for a local lake. It cannot reach a second host or a second data
directory pointed at the same bucket, and the pipeline's multi-table steps (a raw file and its manifest
row, a full staging replace, an erasure) need one writer at a time, which Delta's per-table commits do
not give. So the lake names its writer: the first lock taken on it creates the Delta table
`<lake>/_rwe_writer` with this data directory and host (a Delta commit is a conditional PUT, so of two
racing first writers exactly one wins), and a lock taken from any other data directory is refused with
that name. Handing the lake to another data directory is deliberate: stop the old one, delete the
`_rwe_writer` prefix, start the new one (docs/operations.md, "The lake on object storage").

The lock is re-entrant within one process: `rwe ingest` holds it for the whole ingest and build, and
the raw assets it runs in-process take it again without blocking themselves. Why not the `filelock`
package: it has no owner record and no cross-host expiry, and the owner record is the point here
(a clear message instead of a silent hang).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rwe_assets.errors import RweError

LOCK_NAME = ".rwe-lake.lock"
WRITER_TABLE = "_rwe_writer"  # in a lake on object storage: the data directory that writes it
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0  # another host's lock without a heartbeat for 10 minutes is expired
DEFAULT_TIMEOUT_SECONDS = 3600.0  # how long a second writer waits before giving up
_POLL_SECONDS = 0.5


class LakeLockedError(RweError):
    """Another process holds the lake's lock and did not release it within the timeout."""


@dataclass(frozen=True)
class LockOwner:
    pid: int
    host: str
    process_started: str | None  # the kernel's start time of the pid, to tell a reused pid apart
    purpose: str
    started_at: float
    heartbeat_at: float
    took_over_from: str | None = None  # the dead or expired owner whose record this one replaced

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"pid {self.pid} on host {self.host} ({self.purpose}, since {since})"


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_NAME


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (Linux /proc), or None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def pid_alive(pid: int, process_started: str | None = None) -> bool:
    """Whether process `pid` of this host is running (and, given its start time, is the same one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if process_started is None:
        return True
    current = process_start_time(pid)
    return current is None or current == process_started


def read_owner(data_dir: Path) -> LockOwner | None:
    """Who holds (or last held) the lake's lock, as its file says; None when nobody wrote it."""
    try:
        text = lock_path(data_dir).read_text()
    except OSError:
        return None
    return _parse_owner(text)


def _parse_owner(text: str) -> LockOwner | None:
    try:
        return LockOwner(**json.loads(text)) if text.strip() else None
    except (ValueError, TypeError):
        return None  # a half-written record of a holder killed mid-write: nobody to wait for


class _Held:
    """The lock as this process holds it: the open file, the re-entry depth, the heartbeat."""

    def __init__(self, fd: int, owner: LockOwner):
        self.fd, self.owner, self.depth = fd, owner, 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rwe-lake-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.owner = LockOwner(**{**asdict(self.owner), "heartbeat_at": time.time()})
            _write_owner(self.fd, self.owner)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.ftruncate(self.fd, 0)  # released: nobody to name any more
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def _write_owner(fd: int, owner: LockOwner) -> None:
    data = json.dumps(asdict(owner)).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@contextmanager
def lake_lock(
    data_dir: Path,
    purpose: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    on_wait=None,
) -> Iterator[LockOwner]:
    """Hold the lake's lock for the block. Waits up to `timeout` seconds for another holder (0: do not
    wait), calling `on_wait(message)` once when it starts waiting; then raises LakeLockedError naming
    the holder. Re-entrant within this process."""
    path = lock_path(data_dir).resolve()
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.depth += 1
    if held is None:
        held = _acquire(path, purpose, timeout, on_wait)
        try:
            _claim_remote_lake(Path(data_dir))
        except BaseException:
            held.release()
            raise
        with _guard:
            _held[path] = held
    try:
        yield held.owner
    finally:
        with _guard:
            held.depth -= 1
            done = held.depth == 0
            if done:
                del _held[path]
        if done:
            held.release()


def _claim_remote_lake(data_dir: Path) -> None:
    """For a lake on object storage: record this data directory as its one writer, or refuse when the
    lake names another (module docstring). A local lake needs nothing: its lock file is beside it."""
    import pyarrow as pa
    from deltalake.exceptions import DeltaError

    from rwe_assets.lib import lake
    from rwe_assets.settings import Settings

    lake_dir = Settings.from_env(data_dir=data_dir).lake_dir
    if not lake.is_remote(lake_dir):
        return
    path = lake_dir / WRITER_TABLE
    me = {"host": socket.gethostname(), "data_dir": str(data_dir.resolve())}
    claim = lake.read_table(path)
    if claim is None:
        row = {**me, "claimed_at": time.time()}
        with contextlib.suppress(DeltaError):  # another writer created it first: read below
            lake.write(path, pa.Table.from_pylist([row]), mode="error")  # version 0: one creator wins
        claim = lake.read_table(path)
    writer = claim.sort_by("claimed_at").to_pylist()[0]  # should two creates both commit: the first
    if (writer["host"], writer["data_dir"]) != (me["host"], me["data_dir"]):
        raise LakeLockedError(
            f"the lake at {lake_dir} is written by data directory {writer['data_dir']} on host "
            f"{writer['host']}, not this one ({me['data_dir']} on {me['host']}): one writer per lake on "
            f"object storage; to move it, stop that writer and delete {path}"
        )


def holds_lock(data_dir: Path) -> bool:
    return lock_path(data_dir).resolve() in _held


def _acquire(path: Path, purpose: str, timeout: float, on_wait) -> _Held:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, told = time.monotonic() + timeout, False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        blocker, previous = _try_lock(fd)
        if blocker is None:
            now, pid = time.time(), os.getpid()
            stale = previous.describe() if previous is not None else None
            owner = LockOwner(pid, socket.gethostname(), process_start_time(pid), purpose, now, now, stale)
            _write_owner(fd, owner)
            return _Held(fd, owner)
        os.close(fd)
        holder = blocker.describe() if blocker.pid else "another process"
        message = f"the lake at {path.parent} is locked by {holder}"
        if time.monotonic() >= deadline:
            raise LakeLockedError(
                f"{message}; gave up after {timeout:.0f} s. A dead process of this host holds no lock "
                f"(the kernel frees it); another host's lock expires {STALE_AFTER_SECONDS:.0f} s after "
                f"its last heartbeat"
            )
        if not told and on_wait is not None:
            on_wait(f"{message}; waiting up to {timeout:.0f} s")
            told = True
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))


def _try_lock(fd: int) -> tuple[LockOwner | None, LockOwner | None]:
    """Take the flock and check the record: (who blocks the lock or None when it is ours now, the stale
    record it replaces)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return _parse_owner(os.pread(fd, 1 << 16, 0).decode(errors="replace")) or _UNKNOWN, None
    previous = _parse_owner(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
    if previous is not None and _held_elsewhere(previous):
        fcntl.flock(fd, fcntl.LOCK_UN)
        return previous, None
    return None, previous


def _held_elsewhere(owner: LockOwner) -> bool:
    """A record the flock does not vouch for: only another host's fresh heartbeat still counts."""
    if owner.host == socket.gethostname():
        return False  # its flock is free, so its process is gone (or released without clearing)
    return time.time() - owner.heartbeat_at < STALE_AFTER_SECONDS


_UNKNOWN = LockOwner(0, "unknown", None, "unknown", 0.0, 0.0)
