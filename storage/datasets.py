"""The one storage seam: every table longdoc reads or writes goes through a `Store`.

A store names a lake (storage/lake.py): its data directory (a local path or an object-store URL,
s3://bucket/prefix) and its catalog. Reads are the typed reads of storage/lakeio.py; writes are
commits. A shard stage writes through a `StagedStore`, whose rows are held until the stage
ends and then committed in one transaction with the stage's completion row.
"""

from __future__ import annotations

import errno
import functools
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from storage import lakeio, migrate
from storage.lake import LakeError, LakeRef
from storage.lakeio import Completion, Where

# Errors of the environment that a retry seconds later cannot fix: a full disk, a path that
# cannot be created or written (permissions, a read-only file system, a file where a folder
# must be). Retried, they only repeat, with backoff, and end in several tracebacks.
PERMANENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
    }
)


class StorageError(Exception):
    """A path or URL that cannot be read or written."""


class StoreWriteError(StorageError):
    """A part file that cannot be written, naming the path (a full disk, a read-only or
    unreachable data directory): a retry cannot fix it, so none is made."""


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def split_uri(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path inside it for a local path or a URL."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    if not is_url(path):
        return pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    try:
        return pafs.FileSystem.from_uri(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc


def to_uri(fs: pafs.FileSystem, path: str) -> str:
    """A stable URI for a file, used as `source_uri`."""
    if isinstance(fs, pafs.LocalFileSystem):
        return Path(path).as_uri()
    return f"{fs.type_name}://{path}"


@dataclass(frozen=True)
class Store:
    """The lake under one data directory (local or object store), with its catalog."""

    root: str
    catalog: str | None = None

    @property
    def lake(self) -> LakeRef:
        """The lake, opened once per process (a data directory of the old layout migrated)."""
        ref = LakeRef(self.root, self.catalog)
        try:
            migrate.open_lake(ref)
        except LakeError as exc:
            raise StoreWriteError(str(exc)) from exc
        return ref

    @functools.cached_property
    def fs_and_base(self) -> tuple[pafs.FileSystem, str]:
        """Resolved once per Store (an object store's filesystem costs a credentials lookup)."""
        return split_uri(self.root)

    def __getstate__(self) -> dict[str, Any]:
        """Only the names travel (to a Dask worker): the filesystem is resolved again there."""
        return {"root": self.root, "catalog": self.catalog}

    @property
    def is_local(self) -> bool:
        return not is_url(self.root)

    def read(self, table: str, columns: Sequence[str] | None = None, where: Where | None = None) -> pa.Table:
        """The rows of a table (optionally some columns, filtered); empty when none exist."""
        return lakeio.read(self.lake, table, columns, where)

    def iter_batches(
        self, table: str, columns: Sequence[str] | None = None, where: Where | None = None, batch_size: int = 1024
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table in record batches, so callers keep memory flat."""
        yield from lakeio.iter_batches(self.lake, table, columns, where, batch_size)

    def add(self, table: str, rows: pa.Table | Sequence[Mapping[str, Any]], run_id: str = "") -> int:
        """Store the rows whose key is not stored yet, now, in one commit; returns how many."""
        return self.commit({table: rows}, run_id).get(table, 0)

    def commit(
        self,
        rows: Mapping[str, pa.Table | Sequence[Mapping[str, Any]]],
        run_id: str,
        event: str = "write",
        done: Completion | None = None,
        follows: Mapping[str, str] | None = None,
        batch: str = "",
    ) -> dict[str, int]:
        """Rows of several tables (and a shard stage's completion) in one transaction; the rows
        added per table. `follows`, `batch`: see lakeio.commit."""
        try:
            return lakeio.commit(self.lake, rows, run_id, event, done, follows, batch)
        except LakeError as exc:
            raise StoreWriteError(str(exc)) from exc

    def is_done(self, done: Completion) -> bool:
        return lakeio.is_done(self.lake, done)

    def staged(self) -> StagedStore:
        return StagedStore(self.root, self.catalog)

    def check_writable(self) -> None:
        """StoreWriteError, naming the root, unless a file can be written there now and the
        catalog opens: a run learns before any work that its lake is unusable."""
        try:
            fs, base = self.fs_and_base
            probe = f"{base}/.write-check-{uuid.uuid4().hex}"
            fs.create_dir(base, recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
            migrate.open_lake(LakeRef(self.root, self.catalog))
        except (StorageError, LakeError) as exc:  # a URL that names no store: the message names it
            raise StoreWriteError(str(exc)) from exc
        except OSError as exc:
            raise StoreWriteError(f"cannot write {self.root}: {_reason(exc)}") from exc


@dataclass(frozen=True)
class StagedStore(Store):
    """A store whose `add` holds rows for the one commit at the end of a shard stage."""

    pending: dict[str, list[pa.Table]] = field(default_factory=dict, compare=False)

    def add(self, table: str, rows: pa.Table | Sequence[Mapping[str, Any]], run_id: str = "") -> int:
        data = lakeio.as_table(table, rows)
        self.pending.setdefault(table, []).append(data)
        return data.num_rows

    def rows(self) -> dict[str, pa.Table]:
        return {table: pa.concat_tables(parts) for table, parts in self.pending.items()}


def _reason(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_bytes(fs: pafs.FileSystem, path: str, limit: int) -> bytes:
    """A file's bytes; raises StorageError past `limit` bytes rather than reading it all."""
    size = fs.get_file_info(path).size or 0
    if size > limit:
        raise StorageError(f"{size} bytes is over the {limit}-byte limit")
    with fs.open_input_stream(path) as stream:
        return bytes(stream.read())
