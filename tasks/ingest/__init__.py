"""Ingest stage: reads input files (local or object store); writes `documents`, `rejects` and the
per-file `inbox_files` state that lets an unchanged file be skipped."""

from tasks.ingest.stage import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
