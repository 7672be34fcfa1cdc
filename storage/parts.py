"""Which part files a table may read: one foreign or damaged file must not stop a load.

A `.parquet` in a table's folder that is not Parquet, lacks a key column, has a column of the
wrong type, or NULL keys is skipped and named in a warning. The check reads the Parquet footer
only (schema and row-group statistics); its verdict is kept per path, size and mtime, so a part
is checked once per process. A part written before a column was added to a schema stays valid
(columns are read by name, and the missing ones as nulls): the new columns of segment_labels,
segment_summaries and document_results were added among the old ones, not after them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.sandbox import first_line
from storage.schema import KEYS, SCHEMAS

log = logging.getLogger("longdoc.storage")

_verdicts: dict[tuple[str, int | None, int | None], str | None] = {}  # (path, size, mtime_ns) -> reason
_warned: set[tuple[str, int | None, int | None]] = set()


@dataclass(frozen=True)
class SkippedPart:
    """A part file left out of a read or a load, and why."""

    path: str
    reason: str


def split_parts(fs: pafs.FileSystem, table: str, infos: list[pafs.FileInfo]) -> tuple[list[str], list[SkippedPart]]:
    """The paths of the parts that match `table`'s schema, and those skipped (warned once each)."""
    usable: list[str] = []
    skipped: list[SkippedPart] = []
    for info in infos:
        key = (info.path, info.size, info.mtime_ns)
        if key not in _verdicts:
            _verdicts[key] = mismatch(fs, info.path, table)
        reason = _verdicts[key]
        if reason is None:
            usable.append(info.path)
            continue
        skipped.append(SkippedPart(info.path, reason))
        if key not in _warned:
            _warned.add(key)
            log.warning("longdoc: warning: skipped part file %s of table %s: %s", info.path, table, reason)
    return usable, skipped


def mismatch(fs: pafs.FileSystem, path: str, table: str) -> str | None:
    """Why the part at `path` cannot be read as `table`, or None when it can."""
    try:
        with fs.open_input_file(path) as source:
            parquet = pq.ParquetFile(source)
            have = parquet.schema_arrow
            reason = _schema_mismatch(have, table)
            if reason is None:
                reason = _null_keys(parquet, table)
            return reason
    except (pa.ArrowException, OSError, ValueError) as exc:
        return f"not a readable Parquet file ({first_line(exc)})"


def _schema_mismatch(have: pa.Schema, table: str) -> str | None:
    want = SCHEMAS[table]
    names = have.names
    for name in set(names):
        if names.count(name) > 1:
            return f"column {name} appears {names.count(name)} times"
    present = [field.name for field in want if field.name in names]
    for key in KEYS[table]:
        if key not in names:
            return f"key column {key} is missing"
    for name in present:
        got, expected = have.field(name).type, want.field(name).type
        if _plain(got) != _plain(expected):
            return f"column {name} is {got}, not {expected}"
    return None


def _plain(kind: pa.DataType) -> pa.DataType:
    """A type with the differences that reading casts away removed (large vs small strings,
    a JSON extension over strings, as DuckDB writes it)."""
    if isinstance(kind, pa.ExtensionType):
        kind = kind.storage_type
    if kind == pa.large_string():
        return pa.string()
    if kind == pa.large_binary():
        return pa.binary()
    return kind


def _null_keys(parquet: pq.ParquetFile, table: str) -> str | None:
    """NULL in a key column, from the row groups' statistics; the key columns are read only
    when a writer left the null counts out."""
    meta = parquet.metadata
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    for key in KEYS[table]:
        nulls = 0
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(columns[key]).statistics
            if stats is None or not stats.has_null_count:
                nulls = parquet.read(columns=[key]).column(key).null_count
                break
            nulls += stats.null_count
        if nulls:
            return f"key column {key} has {nulls} NULLs"
    return None
