"""The ingest plan: the inputs listed once, cut into ingest shards of files and record ranges.

A shard holds paths and ranges, never data: each runs as a task of its own, on any worker.
Files go to shards in listing order, so a run's documents come out in the same order however
many shards read them. A large record file whose content changed is cut into record ranges
(ranges.py); an unchanged one stays whole (its shard skips it unread).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from storage.datasets import Store
from storage.inputs import BadInput, InputFile, expand_inputs
from tasks.formats.limits import MIB, Limits
from tasks.ingest import catalog
from tasks.ingest.ranges import RecordRange, cut_record_file, worth_cutting

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


def unchanged(prior: dict[str, Any] | None, item: InputFile, limits: Limits) -> bool:
    """Read by the same readers and limits, to a verdict, with the same size and mtime."""
    return (
        same_settings(prior, limits)
        and prior is not None
        and (prior["size"], prior["mtime_ns"]) == (item.size, item.mtime_ns)
    )


def same_settings(prior: dict[str, Any] | None, limits: Limits) -> bool:
    """Read before with these readers and limits, and not cut short by an unexpected error."""
    return prior is not None and prior["settings"] == limits.key and prior["reason"] != "reader-error"


def plan_ingest(
    store: Store,
    inputs: list[str],
    limits: Limits,
    shard_files: int = DEFAULT_SHARD_FILES,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> IngestPlan:
    """List the inputs (leaving out the data directory) and cut them into shards."""
    found = expand_inputs(inputs, exclude=store.root)
    plan = IngestPlan(files=len(found.files), missing=found.missing, bad=found.bad)
    large = {item.uri for item in found.files if worth_cutting(item, limits)}
    priors = catalog.latest_states(store, large) if large else {}
    units: list[IngestUnit] = []
    for item in found.files:
        units.extend(_units(item, priors.get(item.uri), limits) if item.uri in large else [IngestUnit(item)])
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


def _units(item: InputFile, prior: dict[str, Any] | None, limits: Limits) -> list[IngestUnit]:
    """A record file's ranges when it changed since last read; else the whole file, which its
    shard skips (unchanged) or hashes and remembers (touched)."""
    if unchanged(prior, item, limits):
        return [IngestUnit(item)]
    cut = cut_record_file(item)
    if cut is None or (prior is not None and same_settings(prior, limits) and prior["content_sha256"] == cut[0]):
        return [IngestUnit(item)]
    sha256, ranges = cut
    return [IngestUnit(item, records, part, len(ranges), sha256) for part, records in enumerate(ranges)]
