"""Ingest stage: reads input files (local or object store); writes `documents`, `rejects` and the
per-file `inbox_files` state that lets an unchanged file be skipped. Every storage access goes
through `catalog` (lookups by key, one commit per batch); a run is planned once (`plan_ingest`),
read by shards (`ingest_shard`, each a task of its own) and finished once (`finish_ingest`)."""

from tasks.ingest.stage import IngestResult, empty_result, finish_ingest, ingest, ingest_shard
from tasks.ingest.units import IngestPlan, IngestShard, plan_ingest

__all__ = [
    "IngestPlan",
    "IngestResult",
    "IngestShard",
    "empty_result",
    "finish_ingest",
    "ingest",
    "ingest_shard",
    "plan_ingest",
]
