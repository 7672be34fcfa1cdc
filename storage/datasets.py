"""The one storage seam: every file longdoc reads or writes goes through a `Store`.

A store is rooted at a local path or an object-store URL (s3://bucket/prefix); pyarrow.fs
picks the filesystem. Each table is a directory of immutable Parquet part files; a part is
written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.parts import SkippedPart, split_parts
from storage.schema import SCHEMAS

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
    """Parquet datasets under one root directory (local or object store)."""

    root: str

    @functools.cached_property
    def fs_and_base(self) -> tuple[pafs.FileSystem, str]:
        """Resolved once per Store (an object store's filesystem costs a credentials lookup)."""
        return split_uri(self.root)

    def __getstate__(self) -> dict[str, Any]:
        """Only the root travels (to a Dask worker): the filesystem is resolved again there."""
        return {"root": self.root}

    @property
    def is_local(self) -> bool:
        return not is_url(self.root)

    def local_path(self, name: str) -> Path:
        """A local path for files that must be local (the DuckDB warehouse): beside the datasets
        for a local store; for an object store, a directory of its own under the local cache
        (`$LONGDOC_CACHE_DIR`, else ~/.cache/longdoc), rebuilt from the datasets when missing."""
        if self.is_local:
            return Path(self.fs_and_base[1]) / name
        cache = Path(os.environ.get("LONGDOC_CACHE_DIR") or Path.home() / ".cache" / "longdoc").expanduser()
        digest = hashlib.sha256(self.root.rstrip("/").encode()).hexdigest()[:16]
        directory = cache / "warehouses" / digest
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    def table_dir(self, table: str) -> str:
        return f"{self.fs_and_base[1]}/{table}"

    def write_part(self, table: str, rows: pa.Table | list[dict], part: str) -> str | None:
        """Write rows as one new part file of `table`; returns its path, or None if empty."""
        schema = SCHEMAS[table]
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
        if data.num_rows == 0:
            return None
        data = data.select(schema.names).cast(schema)
        directory = self.table_dir(table)
        try:
            return self._write_new_part(data, directory, part)
        except OSError as exc:
            raise _write_error(exc, directory, self.is_local) from exc

    def _write_new_part(self, data: pa.Table, directory: str, part: str) -> str:
        fs, _ = self.fs_and_base
        fs.create_dir(directory, recursive=True)
        final = f"{directory}/{part}.parquet"
        if fs.get_file_info(final).type != pafs.FileType.NotFound:
            # Parts are immutable: a retried task reusing its name must not replace the first try's rows.
            final = f"{directory}/{part}-{uuid.uuid4().hex[:8]}.parquet"
        if isinstance(fs, pafs.LocalFileSystem):
            tmp = f"{directory}/.{part}.{uuid.uuid4().hex}.tmp"
            pq.write_table(data, tmp, filesystem=fs, compression="zstd")
            os.replace(tmp, final)
        else:  # an object-store PUT is atomic already
            pq.write_table(data, final, filesystem=fs, compression="zstd")
        return final

    def check_writable(self) -> None:
        """StoreWriteError, naming the root, unless a file can be written there now: a run
        learns before any work that its data directory is read-only, full or unreachable."""
        try:
            fs, base = self.fs_and_base
            probe = f"{base}/.write-check-{uuid.uuid4().hex}"
            fs.create_dir(base, recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
        except StorageError as exc:  # a URL that names no store: the message names it
            raise StoreWriteError(str(exc)) from exc
        except OSError as exc:
            raise StoreWriteError(f"cannot write {self.root}: {_reason(exc)}") from exc

    def part_files(self, table: str) -> list[pafs.FileInfo]:
        """The part files of a table, sorted by name (part names start with a timestamp)."""
        fs, _ = self.fs_and_base
        selector = pafs.FileSelector(self.table_dir(table), allow_not_found=True)
        infos = [
            info
            for info in fs.get_file_info(selector)
            if info.is_file and info.base_name.endswith(".parquet") and not info.base_name.startswith(".")
        ]
        return sorted(infos, key=lambda info: info.path)

    def parts(self, table: str) -> list[str]:
        """The paths of a table's part files, whether they match its schema or not."""
        return [info.path for info in self.part_files(table)]

    def usable_parts(self, table: str, infos: list[pafs.FileInfo] | None = None) -> tuple[list[str], list[SkippedPart]]:
        """The part files (of `infos`, else all) that match the table's schema, and those
        skipped: a foreign or damaged file is named in a warning, never read."""
        fs, _ = self.fs_and_base
        return split_parts(fs, table, self.part_files(table) if infos is None else infos)

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
    ) -> pa.Table:
        """All rows of a table (optionally some columns, filtered); empty when none exist."""
        schema = SCHEMAS[table]
        parts, _ = self.usable_parts(table)
        if not parts:
            empty = schema.empty_table()
            return empty.select(list(columns)) if columns else empty
        fs, _ = self.fs_and_base
        dataset = ds.dataset(parts, schema=schema, format="parquet", filesystem=fs)
        return dataset.to_table(columns=list(columns) if columns else None, filter=where)

    def iter_batches(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
        batch_size: int = 1024,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table in record batches, so callers keep memory flat."""
        parts, _ = self.usable_parts(table)
        if not parts:
            return
        fs, _ = self.fs_and_base
        dataset = ds.dataset(parts, schema=SCHEMAS[table], format="parquet", filesystem=fs)
        yield from dataset.to_batches(columns=list(columns) if columns else None, filter=where, batch_size=batch_size)


def _write_error(exc: OSError, directory: str, local: bool) -> OSError | StoreWriteError:
    """A write failure no retry can fix as one line naming the path; others (a flaky disk)
    stay as they are, for the task's retries. An object store's client has retried what it
    could before it raises, so its errors are final too."""
    if local and exc.errno not in PERMANENT_ERRNOS:
        return exc
    return StoreWriteError(f"cannot write {directory}: {_reason(exc)}")


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


def is_in(column: str, values: Sequence[str]) -> ds.Expression:
    """A filter `column IN values`, typed so that an empty list works too."""
    return pc.field(column).isin(pa.array(list(values), type=pa.string()))
