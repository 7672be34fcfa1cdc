"""A DuckDB catalog file that a killed process cannot leave unreadable.

DuckDB 1.5 rewrites the catalog's live metadata block in place at every checkpoint (in the
file's first data block, with one checksum for all 256 KiB): a process killed in the middle of
that write (SIGKILL, the OOM killer) leaves a block whose checksum fails, and the whole lake
refuses to open. Appends to the write-ahead log are safe: a log cut short is replayed up to its
last whole commit. So the lake's connections never checkpoint the live file (see
`NO_CHECKPOINT`); commits only append to `<catalog>.wal`, and once the log is long enough
(`wal_limit`) the writer folds it in on a copy and swaps the copy in with a rename:

    copy catalog + log to <catalog>.next.tmp, CHECKPOINT there, fsync, rename to <catalog>.next
    create <catalog>.swap (the journal)
    rename <catalog>.next over <catalog>; delete <catalog>.wal; delete <catalog>.swap

Whoever finds the journal next finishes or undoes the swap before opening the lake: `.next`
still there means the old file and log are whole (drop `.next`); `.next` gone means the new
file is in place and the log is already in it (drop the log). Every process of longdoc opens
the catalog under `<catalog>.lock` (flock: shared to read, exclusive to write or swap), so no
one attaches half-way through a swap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Settings of every DuckDB instance that attaches a DuckDB catalog: no checkpoint of the live
# file, neither when the log grows nor when the lake is detached.
NO_CHECKPOINT = {"checkpoint_threshold": "1TB"}
NO_CHECKPOINT_PRAGMA = "PRAGMA disable_checkpoint_on_shutdown"
# Every attach replays the log, ~1 ms per KiB of it (a catalog without one opens in ~6 ms); a
# fold-in copies the catalog, ~5 ms per MB. The log is folded in once it passes 1 KiB per MB of
# catalog (4 KiB at least, 256 KiB at most), which keeps replay and copying both a few ms per
# commit (measured in BENCHMARKS.md, "A catalog file a kill cannot tear").
CHECKPOINT_WAL_MIN_BYTES = 4 * 1024
CHECKPOINT_WAL_MAX_BYTES = 256 * 1024


def wal_limit(path: Path) -> int:
    """The log size past which the catalog at `path` is folded in."""
    return min(CHECKPOINT_WAL_MAX_BYTES, max(CHECKPOINT_WAL_MIN_BYTES, path.stat().st_size // 1024))


class CatalogBusy(Exception):
    """Another process held the catalog for longer than the wait allowed."""


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


@contextmanager
def held(path: Path, exclusive: bool, wait_seconds: float) -> Iterator[None]:
    """The catalog at `path` locked for this process (shared to read, exclusive to write), an
    interrupted swap finished or undone first. A catalog on a read-only file system, where no
    lock file can be made, is opened unlocked: nothing can write it there either."""
    try:
        fd = os.open(_sibling(path, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if exclusive:
            raise
        yield
        return
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            _lock(fd, exclusive or _swap_pending(path), deadline)
            if _swap_pending(path):
                if not exclusive:  # only a writer's lock may finish the swap: take it and look again
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    _lock(fd, True, deadline)
                recover(path)
                if not exclusive:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    continue
            break
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, exclusive: bool, deadline: float) -> None:
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise CatalogBusy("the catalog stayed locked by another process") from None
            time.sleep(0.02)


def _swap_pending(path: Path) -> bool:
    return any(_sibling(path, suffix).exists() for suffix in (".swap", ".next", ".next.tmp"))


def recover(path: Path) -> None:
    """Finish or undo a swap a killed process left (call with the exclusive lock held)."""
    journal, staged, work = _sibling(path, ".swap"), _sibling(path, ".next"), _sibling(path, ".next.tmp")
    if journal.exists() and not staged.exists():
        _unlink(_sibling(path, ".wal"))  # the new catalog is in place and holds the log
    for leftover in (staged, work, _sibling(work, ".wal"), journal):
        _unlink(leftover)
    _fsync(path.parent)


def create(path: Path) -> None:
    """An empty DuckDB file at `path`, made aside and renamed in, so a kill never leaves half a
    header there (call with the exclusive lock held)."""
    import duckdb

    work = _sibling(path, ".next.tmp")
    _unlink(work)
    duckdb.connect(str(work)).close()
    _fsync(work)
    os.replace(work, path)
    _fsync(path.parent)


def checkpoint_if_due(path: Path, limit: int | None = None) -> bool:
    """Fold the log into the catalog by the swap above when it is over `limit` bytes
    (`wal_limit` by default); True if it did (call with the exclusive lock held and the catalog
    detached)."""
    import duckdb

    wal = _sibling(path, ".wal")
    if not wal.exists() or wal.stat().st_size <= (wal_limit(path) if limit is None else limit):
        return False
    work, staged, journal = _sibling(path, ".next.tmp"), _sibling(path, ".next"), _sibling(path, ".swap")
    shutil.copyfile(path, work)
    shutil.copyfile(wal, _sibling(work, ".wal"))
    con = duckdb.connect(str(work), config={"autoload_known_extensions": False, "autoinstall_known_extensions": False})
    try:
        con.execute("CHECKPOINT")  # replays the copied log and writes it into the copy
    finally:
        con.close()
    if _sibling(work, ".wal").exists():
        raise OSError(f"the checkpoint of {work} left its log")
    _fsync(work)
    os.replace(work, staged)
    journal.touch()
    _fsync(path.parent)
    os.replace(staged, path)
    _unlink(wal)
    _fsync(path.parent)
    _unlink(journal)
    return True


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync(path: Path) -> None:
    """A file's bytes, or a folder's names, on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
