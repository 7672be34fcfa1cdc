"""Ingest: read sources into `documents`, one row per distinct text; unreadable input to `rejects`.

No single input stops a run: whatever one file raises (a reader's bug, a MemoryError, a name
that is not UTF-8) becomes a reject with a reason, and every string stored is valid UTF-8.

The inbox is read incrementally: `inbox_files` remembers each file's size, mtime, content hash
and documents, so an unchanged file is skipped without being read (a touched one is hashed,
not parsed). A run is planned once (units.py), read by shards that commit a batch at a time
(batch.py), and finished by `finish_ingest` (the rejects of missing inputs, the inbox rows of
files cut into record ranges). A file's inbox row is committed with or after its documents: a
run killed before is simply done again by the next one, which stores nothing twice.

With `--redact` every document is redacted before its doc_id is computed (batch.py), and nothing
stored holds a value found (documents, redactions, rejects, inbox_files). The placeholders in
the URIs of one file are numbered in the order of its records, so a record range that does not
start the file first names the URIs of the records before it (`_seed_uri_numbers`): a cut file
stores the URIs a whole-file read does, whichever shard or process reads each range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Self

from storage.datasets import StorageError, Store
from storage.inputs import InputFile, escape_text, read_input, valid_utf8
from tasks.formats.limits import RECORD_FORMATS, Limits, RejectedInput
from tasks.formats.readers import FORMATS, Document, doc_id_for, read_documents, read_record_range
from tasks.ingest import catalog
from tasks.ingest.batch import BatchSize, ShardRun
from tasks.ingest.ranges import read_range, records_before
from tasks.ingest.units import IngestPlan, IngestShard, IngestUnit, plan_ingest, same_settings, stored_name, unchanged
from tasks.redact import Placeholders, RedactSettings

__all__ = ["IngestResult", "Limits", "RejectedInput", "doc_id_for", "finish_ingest", "ingest", "ingest_shard"]


@dataclass(frozen=True)
class RangeOutcome:
    """What one record range of a cut file gave: its documents in order; a file-level reason."""

    doc_ids: tuple[str, ...]
    reason: str | None


@dataclass
class IngestResult:
    """One shard's ingest, or several added up with `+` (in shard order)."""

    doc_ids: list[str]
    new_documents: int
    known_documents: int
    rejects: int
    files: int = 0
    files_unchanged: int = 0
    rejects_new: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    ranges: dict[tuple[str, int], RangeOutcome] = field(default_factory=dict)  # (file uri, part)

    def __add__(self, other: Self) -> Self:
        doc_ids = list(dict.fromkeys(self.doc_ids + other.doc_ids))  # first seen first, once
        new = self.new_documents + other.new_documents
        reasons = dict(self.rejects_by_reason)
        for reason, n in other.rejects_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return type(self)(
            doc_ids,
            new,
            len(doc_ids) - new,
            self.rejects + other.rejects,
            self.files + other.files,
            self.files_unchanged + other.files_unchanged,
            self.rejects_new + other.rejects_new,
            dict(sorted(reasons.items())),
            self.ranges | other.ranges,
        )


def empty_result() -> IngestResult:
    return IngestResult([], 0, 0, 0)


def ingest(
    store: Store,
    inputs: list[str],
    run_id: str,
    limits: Limits | None = None,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """Read every new or changed input; store documents not seen before; record every reject.
    The shards one after the other, in this process (the flow runs them as tasks). With
    `redaction`, nothing stored holds a value it finds."""
    limits = limits or Limits()
    plan = plan_ingest(store, inputs, limits, redaction=redaction)
    total = empty_result()
    for shard in plan.shards:
        total = total + ingest_shard(store, shard, run_id, limits, redaction=redaction)
    return total + finish_ingest(store, plan, total, run_id, limits, redaction)


def ingest_shard(
    store: Store,
    shard: IngestShard,
    run_id: str,
    limits: Limits,
    progress: Callable[[int, int], None] | None = None,
    size: BatchSize | None = None,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """Read one shard's files and record ranges, committing a batch at a time."""
    name = f"{run_id}-ingest-{shard.index:05d}"
    run = ShardRun(store, run_id, limits, datetime.now(UTC), name, size or BatchSize(), redaction)
    names = {unit.item.uri: stored_name(unit.item.uri, redaction) for unit in shard.units if unit.records is None}
    whole = [names[unit.item.uri] for unit in shard.units if unit.records is None and not unit.shared_name]
    priors = catalog.latest_states(store, whole) if whole else {}
    ranges: dict[tuple[str, int], RangeOutcome] = {}
    for done, unit in enumerate(shard.units, start=1):
        if unit.records is None:
            _ingest_file(run, unit.item, None if unit.shared_name else priors.get(names[unit.item.uri]))
        else:
            ranges[(unit.item.uri, unit.part)] = _ingest_range(run, unit)
        if progress:
            progress(done, len(shard.units))
    run.flush()
    doc_ids = list(run.doc_ids)
    files = sum(1 for unit in shard.units if unit.records is None)
    return IngestResult(
        doc_ids,
        run.new_documents,
        len(doc_ids) - run.new_documents,
        sum(run.reasons.values()),
        files,
        run.unchanged,
        run.rejects_new,
        dict(sorted(run.reasons.items())),
        ranges,
    )


def finish_ingest(
    store: Store,
    plan: IngestPlan,
    shards: IngestResult,
    run_id: str,
    limits: Limits,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """After every shard: the rejects of inputs that name no file, and the inbox rows of the
    files cut into record ranges (each once all its ranges are committed), redacted as the
    shards' were. Counts the files cut into ranges, which no shard counts."""
    run = ShardRun(store, run_id, limits, datetime.now(UTC), f"{run_id}-ingest-finish", redaction=redaction)
    for pattern in plan.missing:
        run.reject(pattern, "missing-input", "no file matches this input", "")
    for bad in plan.bad:
        run.reject(bad.uri, bad.reason, bad.error, "")
    cut = {unit.item.uri: unit for shard in plan.shards for unit in shard.units if unit.records is not None}
    for uri, unit in cut.items():
        outcomes = [shards.ranges.get((uri, part)) for part in range(unit.parts)]
        if all(outcomes):
            doc_ids = [doc_id for o in outcomes if o for doc_id in o.doc_ids]
            reason = next((o.reason for o in outcomes if o and o.reason), None)
            run.remember(unit.item, unit.sha256, doc_ids, reason)
    run.flush()
    return IngestResult(
        [], 0, 0, sum(run.reasons.values()), len(cut), 0, run.rejects_new, dict(sorted(run.reasons.items()))
    )


def _ingest_file(run: ShardRun, item: InputFile, prior: dict[str, Any] | None) -> None:
    """One file to documents or rejects. An unexpected error is a `reader-error` reject that the
    next run tries again (it may be a bug fixed since, or memory that was short)."""
    try:
        _read_file(run, item, prior)
    except Exception as exc:  # any type: one input must not stop the run
        reason = "reader-error"
        run.reject(item.uri, reason, f"{type(exc).__name__}: {_first_line(exc)}", _stat_print(item))
        run.remember(item, "", [], reason)


def _ingest_range(run: ShardRun, unit: IngestUnit) -> RangeOutcome:
    """One record range of a cut file; a file-level failure is the file's reject (its inbox row,
    written by `finish_ingest`, carries the reason, so the next run reads it again)."""
    assert unit.records is not None
    item = unit.item
    try:
        if run.redaction and run.uri_ends.get(item.uri) != unit.records.start:
            _seed_uri_numbers(run, unit)
        records = read_range(item, unit.records, unit.is_parquet)
        outcome = RangeOutcome(tuple(_add_documents(run, item.uri, read_record_range, records, unit)), None)
        run.uri_ends[item.uri] = unit.records.stop  # the next range of the file goes on from here
        return outcome
    except Exception as exc:  # any type: one input must not stop the run
        reason = "corrupt" if isinstance(exc, RecursionError) else "reader-error"
        run.reject(item.uri, reason, f"{type(exc).__name__}: {_first_line(exc)}", _stat_print(item))
        return RangeOutcome((), reason)


def _seed_uri_numbers(run: ShardRun, unit: IngestUnit) -> None:
    """The file's URI numbering as a whole-file read has it where this range starts: the URIs of
    the records before the range, named in order (read and parsed a piece at a time; their texts
    neither redacted nor stored). So the numbers do not depend on which range saw a value first,
    nor on where the file was cut. It costs a parse and a URI scrub of the records before."""
    assert unit.records is not None
    run.uri_names[unit.item.uri.split("#", 1)[0]] = Placeholders()
    run.uri_ends.pop(unit.item.uri, None)
    if unit.records.start == 0:
        return
    for records, first_record in records_before(unit.item, unit.records, unit.is_parquet):
        for doc in read_record_range(unit.item.uri, records, first_record, run.limits):
            document = doc.reject is None and doc.text.strip() and valid_utf8(doc.text)
            run.stored_uri(doc.source_uri if document else escape_text(doc.source_uri))  # as `_add` names it


def _add_documents(run: ShardRun, uri: str, reader: Callable[..., Any], records: Any, unit: IngestUnit) -> list[str]:
    assert unit.records is not None
    doc_ids: list[str] = []
    for doc in reader(uri, records, unit.records.first_record, run.limits, dict(unit.taken)):
        _add(run, doc, unit.sha256, doc_ids)
    return doc_ids


def _add(run: ShardRun, doc: Document, sha256: str, doc_ids: list[str]) -> None:
    """A document, or the reject of a record."""
    if doc.reject is not None:
        run.reject(doc.source_uri, doc.reject.reason, str(doc.reject), sha256)
    elif not doc.text.strip():
        run.reject(doc.source_uri, "empty", "no text", sha256)
    elif not valid_utf8(doc.text):  # e.g. a JSON "\ud800" escape or a PDF's broken font map
        run.reject(doc.source_uri, "undecodable", "the text holds lone surrogates (not Unicode)", sha256)
    else:
        doc_ids.append(run.add_document(doc))


def _read_file(run: ShardRun, item: InputFile, prior: dict[str, Any] | None) -> None:
    if unchanged(prior, item, run.settings):
        _reuse(run, prior)  # unchanged: not even read
        return
    suffix = PurePosixPath(item.path).suffix.lower()
    try:
        if suffix not in FORMATS:
            raise RejectedInput("unsupported-format", f"no reader for '{suffix or 'no extension'}'")
        data = _read(item, run.limits.file_limit(suffix))
    except RejectedInput as exc:
        run.reject(item.uri, exc.reason, str(exc), _stat_print(item))
        run.remember(item, "", [], exc.reason)
        return
    sha256 = hashlib.sha256(data).hexdigest()
    if prior and same_settings(prior, run.settings) and prior["content_sha256"] == sha256:
        _reuse(run, prior)  # touched, not changed: remember the new mtime, parse nothing
        run.remember(item, sha256, json.loads(prior["doc_ids"]), prior["reason"])
        return
    doc_ids, reason = _parse(run, item, suffix, data, sha256)
    run.remember(item, sha256, doc_ids, reason)


def _stat_print(item: InputFile) -> str:
    return f"size={item.size};mtime_ns={item.mtime_ns}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "(no message)"


def _read(item: InputFile, limit: int) -> bytes:
    try:
        return read_input(item, limit)
    except StorageError as exc:
        raise RejectedInput("too-large", str(exc)) from exc
    except OSError as exc:
        raise RejectedInput("unreadable", _first_line(exc) if str(exc).strip() else type(exc).__name__) from exc


def _reuse(run: ShardRun, prior: Any) -> None:
    run.unchanged += 1
    for doc_id in json.loads(prior["doc_ids"]):
        run.add_doc_id(doc_id)
    if prior["reason"]:
        run.reasons[prior["reason"]] += 1
    elif prior["content_sha256"] and PurePosixPath(prior["source_uri"]).suffix.lower() in RECORD_FORMATS:
        run.reasons.update(catalog.record_rejects(run.store, prior["source_uri"], prior["content_sha256"]))


def _parse(run: ShardRun, item: InputFile, suffix: str, data: bytes, sha256: str) -> tuple[list[str], str | None]:
    """The documents of one file's bytes; its own reject reason, if the whole file is refused."""
    stem = PurePosixPath(item.path).stem
    doc_ids: list[str] = []
    try:
        for doc in read_documents(item.uri, suffix, stem, data, run.limits):
            _add(run, doc, sha256, doc_ids)
    except RejectedInput as exc:
        run.reject(item.uri, exc.reason, str(exc), sha256)
        return doc_ids, exc.reason
    except RecursionError:  # a parser defeated by nesting depth
        run.reject(item.uri, "corrupt", "nested too deeply to parse", sha256)
        return doc_ids, "corrupt"
    if not doc_ids and suffix not in (".jsonl", ".ndjson", ".parquet"):
        return doc_ids, "empty"
    return doc_ids, None
