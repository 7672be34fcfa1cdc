"""The ingest plan: the inputs listed once, cut into ingest shards of files and record ranges.

A shard holds paths and ranges, never data: each runs as a task of its own, on any worker.
Files go to shards in listing order, so a run's documents come out in the same order however
many shards read them. A large record file whose content changed is cut into record ranges
(ranges.py); an unchanged one stays whole (its shard skips it unread).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from storage.datasets import Store
from storage.inputs import BadInput, InputFile, expand_inputs
from tasks.formats.limits import MIB, Limits
from tasks.ingest import catalog
from tasks.ingest.ranges import RecordRange, cut_record_file, taken_before, worth_cutting
from tasks.redact import RedactSettings, scrub_uri

DEFAULT_SHARD_FILES = 2000  # files (or record ranges) per ingest shard
DEFAULT_SHARD_BYTES = 64 * MIB  # input bytes per ingest shard


@dataclass(frozen=True)
class IngestUnit:
    """One file, or one record range of a record file cut into `parts` ranges."""

    item: InputFile
    records: RecordRange | None = None
    part: int = 0
    parts: int = 1
    sha256: str = ""  # a cut file's content hash (the planner read it whole)
    # With --redact: another input's name redacts to the same stored URI, so the inbox row
    # stored under it may be the other file's: neither is taken for the other (read again).
    shared_name: bool = False
    # A cut file's ids that records of earlier ranges claimed (`source_uri`, the claimer's
    # place): this range rejects them as `duplicate-id`, as a whole-file read does.
    taken: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        return self.records.stop - self.records.start if self.records and not self.is_parquet else self.item.size

    @property
    def is_parquet(self) -> bool:
        return self.item.path.lower().endswith(".parquet")


@dataclass(frozen=True)
class IngestShard:
    index: int
    units: tuple[IngestUnit, ...]

    @property
    def key(self) -> str:
        names = "\n".join(f"{u.item.uri}#{u.part}/{u.parts}" for u in self.units)
        return hashlib.sha256(names.encode()).hexdigest()[:16]


@dataclass
class IngestPlan:
    shards: list[IngestShard] = field(default_factory=list)
    files: int = 0
    missing: list[str] = field(default_factory=list)
    bad: list[BadInput] = field(default_factory=list)


def unchanged(prior: dict[str, Any] | None, item: InputFile, settings: str) -> bool:
    """Read under the same `settings` (batch.inbox_settings), to a verdict, with the same size
    and mtime."""
    return (
        same_settings(prior, settings)
        and prior is not None
        and (prior["size"], prior["mtime_ns"]) == (item.size, item.mtime_ns)
    )


def same_settings(prior: dict[str, Any] | None, settings: str) -> bool:
    """Read before under these `settings` (readers, limits, redaction), and not cut short by an
    unexpected error."""
    return prior is not None and prior["settings"] == settings and prior["reason"] != "reader-error"


def inbox_settings(limits: Limits, redaction: RedactSettings | None) -> str:
    """The readers' limits and the redaction: a file read without redaction is read again with it."""
    return limits.key + (f";{redaction.key}" if redaction else "")


def stored_name(uri: str, redaction: RedactSettings | None) -> str:
    """A file's URI as its inbox row stores it: redacted with --redact (the file's own
    numbering starts with its path, so this is the URI its records' numbering gives it too)."""
    return scrub_uri(uri, redaction) if redaction else uri


def plan_ingest(
    store: Store,
    inputs: list[str],
    limits: Limits,
    shard_files: int = DEFAULT_SHARD_FILES,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    redaction: RedactSettings | None = None,
) -> IngestPlan:
    """List the inputs (leaving out the data directory) and cut them into shards."""
    found = expand_inputs(inputs, exclude=store.root)
    plan = IngestPlan(files=len(found.files), missing=found.missing, bad=found.bad)
    names = {item.uri: stored_name(item.uri, redaction) for item in found.files}
    shared = {name for name, n in Counter(names.values()).items() if n > 1}
    large = {item.uri for item in found.files if worth_cutting(item, limits) and names[item.uri] not in shared}
    priors = catalog.latest_states(store, {names[uri] for uri in large}) if large else {}
    settings = inbox_settings(limits, redaction)
    units: list[IngestUnit] = []
    for item in found.files:
        if item.uri in large:
            units.extend(_units(item, priors.get(names[item.uri]), settings, limits))
        else:
            units.append(IngestUnit(item, shared_name=names[item.uri] in shared))
    current: list[IngestUnit] = []
    size = 0
    for unit in units:
        if current and (len(current) >= shard_files or size + unit.size > shard_bytes):
            plan.shards.append(IngestShard(len(plan.shards), tuple(current)))
            current, size = [], 0
        current.append(unit)
        size += unit.size
    if current:
        plan.shards.append(IngestShard(len(plan.shards), tuple(current)))
    return plan


def _units(item: InputFile, prior: dict[str, Any] | None, settings: str, limits: Limits) -> list[IngestUnit]:
    """A record file's ranges when it changed since last read; else the whole file, which its
    shard skips (unchanged) or hashes and remembers (touched)."""
    if unchanged(prior, item, settings):
        return [IngestUnit(item)]
    cut = cut_record_file(item)
    if cut is None or (prior is not None and same_settings(prior, settings) and prior["content_sha256"] == cut[0]):
        return [IngestUnit(item)]
    sha256, ranges = cut
    try:
        taken = taken_before(item, ranges, limits)
    except Exception:  # any type (a file changed under the planner, a reader's bug): read whole, judged so
        return [IngestUnit(item)]
    return [
        IngestUnit(item, records, part, len(ranges), sha256, taken=ids)
        for part, (records, ids) in enumerate(zip(ranges, taken, strict=True))
    ]
