"""The steps of a run around its shards: ingest, cutting shards, and recording the run.

The shard stages are tasks/run/pipeline.py's; the Prefect flow only chains these and those.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from storage import runlog
from storage.datasets import Store
from tasks.formats.limits import Limits
from tasks.ingest.stage import ingest
from tasks.run.results import IngestResult, RunReport, RunResults
from tasks.run.shards import Shard, make_shards


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def step_ingest(store: Store, inputs: list[str], run_id: str, limits: Limits | None = None) -> IngestResult:
    start = time.perf_counter()
    result = ingest(store, inputs, run_id, limits)
    return IngestResult(
        seconds=time.perf_counter() - start,
        doc_ids=result.doc_ids,
        files=result.files,
        files_unchanged=result.files_unchanged,
        documents=len(result.doc_ids),
        documents_new=result.new_documents,
        documents_known=result.known_documents,
        rejects=result.rejects,
        rejects_new=result.rejects_new,
        rejects_by_reason=result.rejects_by_reason,
    )


def step_shard(store: Store, doc_ids: list[str], max_documents: int) -> list[Shard]:
    return make_shards(store, doc_ids, max_documents)


def step_begin_run(
    store: Store, run_id: str, flow_run_id: str | None, started_at: datetime, parameters: dict[str, Any]
) -> None:
    """The run's `runs` row, status running, committed as the start of its flight: readers see
    nothing of the run until it ends (storage/runlog.py)."""
    row = {
        "run_id": run_id,
        "flow_run_id": flow_run_id,
        "started_at": started_at,
        "status": "running",
        "parameters": json.dumps(parameters, default=str),
    }
    runlog.begin(store.lake, row)


def step_record_run(
    store: Store,
    run_id: str,
    flow_run_id: str | None,
    config_id: str | None,
    started_at: datetime,
    parameters: dict[str, Any],
    results: RunResults,
    status: str,
    error: str | None = None,
) -> RunReport:
    """Commit this run's final row to `runs`: the end of its flight, after which readers see it."""
    finished = datetime.now(UTC)
    stage_seconds = results.stage_seconds()
    model_seconds = stage_seconds.get("classify", 0) + stage_seconds.get("summarize", 0)
    report = RunReport(
        run_id=run_id,
        flow_run_id=flow_run_id,
        config_id=config_id,
        started_at=started_at,
        finished_at=finished,
        status=status,
        results=results,
        counts=results.counts(),
        stage_seconds=stage_seconds,
        seconds=(finished - started_at).total_seconds(),
        tokens_per_s=results.model_tokens / model_seconds if model_seconds > 0 else None,
        error=error,
        data_dir=store.root,
    )
    runlog.end(store.lake, report.row(json.dumps(parameters, default=str)))
    return report


def step_compact(store: Store, retain_days: float) -> dict[str, int]:
    """The lake's maintenance after a run (the nightly's `compact` parameter)."""
    from datetime import timedelta

    from storage import warehouse

    return warehouse.compact(store, timedelta(days=retain_days))
