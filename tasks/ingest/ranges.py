"""Record ranges: a large JSONL or Parquet file cut into ranges of records that ingest shards
read on their own, so that a file of a million records is not one unit of work.

A JSONL file is cut after a newline byte, so each range is whole lines; the planner reads the
bytes once (hashing them, counting lines, checking they are UTF-8) but parses nothing. A
Parquet file is cut between row groups, from its footer. Each range knows the number of its
first record in the whole file, so record numbers and `source_uri`s are those of a whole-file
read. A file that does not qualify (not UTF-8, NUL bytes, no footer, no 'text' column, small)
is not cut: one shard reads it whole, as before, and rejects it the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from storage.inputs import InputFile
from tasks.formats.limits import MIB, Limits, RejectedInput
from tasks.formats.readers import decode, record_claims

RANGE_BYTES = 16 * MIB  # a JSONL range's bytes; also what makes a record file worth cutting
RANGE_RECORDS = 20_000  # a Parquet range's rows (whole row groups)
PARQUET_FOOTER_BYTES = 1 * MIB  # a smaller Parquet file is never cut (its footer is not even read)
_READ_CHUNK = 4 * MIB  # also the pieces `records_before` parses


@dataclass(frozen=True)
class RecordRange:
    """Records of one file: JSONL bytes [start, stop) or Parquet row groups [start, stop)."""

    start: int
    stop: int
    first_record: int


def worth_cutting(item: InputFile, limits: Limits) -> bool:
    suffix = PurePosixPath(item.path).suffix.lower()
    if item.size > limits.max_record_file_bytes:  # rejected whole, as before
        return False
    if suffix in (".jsonl", ".ndjson"):
        return item.size > RANGE_BYTES
    return suffix == ".parquet" and item.size > PARQUET_FOOTER_BYTES


def cut_record_file(item: InputFile) -> tuple[str, list[RecordRange]] | None:
    """The file's content hash and its ranges, or None when it is not cut (one range or less,
    or a file that a whole-file read must judge)."""
    try:
        if PurePosixPath(item.path).suffix.lower() == ".parquet":
            return _cut_parquet(item)
        return _cut_jsonl(item)
    except (OSError, ValueError, RejectedInput, UnicodeDecodeError):
        return None
    except Exception:  # pyarrow raises many types for a damaged footer: the whole-file read says why
        return None


def _cut_jsonl(item: InputFile) -> tuple[str, list[RecordRange]] | None:
    digest = hashlib.sha256()
    ranges: list[RecordRange] = []
    pending = b""  # bytes since the last cut
    start = lines = 0
    with item.fs.open_input_stream(item.path) as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
            pending += chunk
            while len(pending) >= RANGE_BYTES:
                cut = (pending.rfind(b"\n", 0, RANGE_BYTES) + 1) or (pending.find(b"\n", RANGE_BYTES) + 1)
                if cut == 0:
                    break  # one line longer than a range: it grows until it ends
                lines = _add_range(ranges, pending[:cut], start, lines)
                start, pending = start + cut, pending[cut:]
    if pending:
        _add_range(ranges, pending, start, lines)
    return (digest.hexdigest(), ranges) if len(ranges) > 1 else None


def _add_range(ranges: list[RecordRange], data: bytes, start: int, lines: int) -> int:
    """Append the range of `data` (whole lines from byte `start`, record `lines`); the lines
    counted as a whole-file read splits them. ValueError when the range is not clean UTF-8."""
    if start == 0:
        text, encoding = decode(data)  # a byte-order mark, NUL bytes, control characters: as a whole read
        if encoding != "utf-8":
            raise ValueError(f"not UTF-8 but {encoding}")
    else:
        if b"\x00" in data:
            raise ValueError("NUL bytes")
        text = data.decode("utf-8")
    ranges.append(RecordRange(start, start + len(data), lines))
    return lines + len(text.splitlines())


def _cut_parquet(item: InputFile) -> tuple[str, list[RecordRange]] | None:
    import pyarrow.parquet as pq

    with item.fs.open_input_file(item.path) as source:
        meta = pq.ParquetFile(source).metadata
    if "text" not in meta.schema.to_arrow_schema().names:
        return None
    ranges: list[RecordRange] = []
    start = first = rows = size = 0
    for group in range(meta.num_row_groups):
        rows_here, size_here = meta.row_group(group).num_rows, meta.row_group(group).total_byte_size
        if rows and (rows + rows_here > RANGE_RECORDS or size + size_here > RANGE_BYTES):
            ranges.append(RecordRange(start, group, first))
            start, first, rows, size = group, first + rows, 0, 0
        rows, size = rows + rows_here, size + size_here
    ranges.append(RecordRange(start, meta.num_row_groups, first))
    return (_sha256(item), ranges) if len(ranges) > 1 else None


def _sha256(item: InputFile) -> str:
    digest = hashlib.sha256()
    with item.fs.open_input_stream(item.path) as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_range(item: InputFile, records: RecordRange, parquet: bool) -> Any:
    """The range's records as `read_record_range` takes them: JSONL bytes, or a Parquet table."""
    if parquet:
        import pyarrow.parquet as pq

        with item.fs.open_input_file(item.path) as source:
            return pq.ParquetFile(source).read_row_groups(list(range(records.start, records.stop)))
    with item.fs.open_input_file(item.path) as source:
        source.seek(records.start)
        data = bytes(source.read(records.stop - records.start))
    if records.start == 0 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


def records_before(item: InputFile, records: RecordRange, parquet: bool) -> Iterator[tuple[Any, int]]:
    """The records of the file before `records`, a piece at a time (JSONL bytes of whole lines,
    about `_READ_CHUNK` each, or one row group), each with the number of its first record: as
    `read_record_range` takes them. Memory stays about one piece whatever the range's place."""
    if parquet:
        import pyarrow.parquet as pq

        with item.fs.open_input_file(item.path) as source:
            file, first = pq.ParquetFile(source), 0
            for group in range(records.start):
                table = file.read_row_group(group)
                yield table, first
                first += table.num_rows
        return
    lines, left, pending = 0, records.start, b""
    with item.fs.open_input_stream(item.path) as stream:
        while left and (chunk := stream.read(min(_READ_CHUNK, left))):
            left -= len(chunk)
            pending += chunk
            cut = pending.rfind(b"\n") + 1  # `records.start` is a line's start: nothing is left over
            if cut:
                piece, pending = pending[:cut], pending[cut:]
                if lines == 0 and piece.startswith(b"\xef\xbb\xbf"):
                    piece = piece[3:]
                yield piece, lines
                lines += len(piece.decode("utf-8").splitlines())  # counted as `_add_range` counts


def taken_before(item: InputFile, ranges: list[RecordRange], limits: Limits) -> list[tuple[tuple[str, str], ...]]:
    """For each range, the ids of its records that a record of an earlier range claimed first
    (`source_uri` -> the claimer's place): what the range's reader must treat as taken, so a
    duplicate id across ranges is the `duplicate-id` reject of a whole-file read, whichever
    shard reads which range first. The planner parses the file once for this, a range at a
    time, keeping each id once (the parts after the file's URI: `id` -> `line-N`)."""
    parquet = item.path.lower().endswith(".parquet")
    prefix = f"{item.uri}#"
    first: dict[str, str] = {}
    taken: list[tuple[tuple[str, str], ...]] = []
    for records in ranges:
        claims = record_claims(item.uri, read_range(item, records, parquet), records.first_record, limits)
        ids = {uri[len(prefix) :]: place[len(prefix) :] for uri, place in claims.items()}
        taken.append(tuple((prefix + i, prefix + first[i]) for i in ids if i in first))
        for i, place in ids.items():
            first.setdefault(i, place)
    return taken
