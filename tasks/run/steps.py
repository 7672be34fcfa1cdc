"""The steps of a run around its shards: ingest, cutting shards, and recording the run.

The shard stages are tasks/run/pipeline.py's; the Prefect flow only chains these and those.
"""

from __future__ import annotations

import functools
import json
import operator
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from storage import warehouse
from storage.datasets import Store
from tasks import ingest
from tasks.formats.limits import Limits
from tasks.inference.engine import Progress
from tasks.ingest import IngestPlan, IngestShard
from tasks.redact import RedactSettings
from tasks.run.results import IngestResult, RunReport, RunResults
from tasks.run.shards import Shard, make_shards


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def step_ingest(
    store: Store,
    inputs: list[str],
    run_id: str,
    limits: Limits | None = None,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """The whole ingest in this process: planned, its shards one after the other, finished."""
    start = time.perf_counter()
    limits = limits or Limits()
    plan = step_plan_ingest(store, inputs, limits, redaction)
    shards = [step_ingest_shard(store, shard, run_id, limits, None, redaction) for shard in plan.shards]
    return step_finish_ingest(store, plan, shards, run_id, limits, time.perf_counter() - start, redaction)


def step_plan_ingest(
    store: Store, inputs: list[str], limits: Limits, redaction: RedactSettings | None = None
) -> IngestPlan:
    """The inputs listed once and cut into ingest shards (paths and record ranges)."""
    return ingest.plan_ingest(store, inputs, limits, redaction=redaction)


def step_ingest_shard(
    store: Store,
    shard: IngestShard,
    run_id: str,
    limits: Limits,
    progress: Progress | None = None,
    redaction: RedactSettings | None = None,
) -> ingest.IngestResult:
    return ingest.ingest_shard(store, shard, run_id, limits, progress, redaction=redaction)


def step_finish_ingest(
    store: Store,
    plan: IngestPlan,
    shards: list[ingest.IngestResult],
    run_id: str,
    limits: Limits,
    seconds: float,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """The shards' results added up (in shard order) and the run's ingest finished, as the
    run's typed result; `seconds` is the ingest's wall time so far."""
    start = time.perf_counter()
    total = functools.reduce(operator.add, shards, ingest.empty_result())
    result = total + ingest.finish_ingest(store, plan, total, run_id, limits, redaction)
    return IngestResult(
        seconds=seconds + time.perf_counter() - start,
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
    """Write this run's row to `runs` and bring the warehouse up to date."""
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
        counts=results.counts() | warehouse.parts_skipped_count(store),  # foreign or damaged part files
        stage_seconds=stage_seconds,
        seconds=(finished - started_at).total_seconds(),
        tokens_per_s=results.model_tokens / model_seconds if model_seconds > 0 else None,
        error=error,
        data_dir=store.root,
    )
    row = report.row(json.dumps(parameters, default=str))
    path = store.write_part("runs", [row], f"{run_id}-run")
    try:
        report.warehouse_rows_added = warehouse.sync(store)
    except Exception as exc:
        if status == "completed" and path:
            _rewrite_as_failed(store, path, row, exc)
        raise
    return report


def _rewrite_as_failed(store: Store, path: str, row: dict[str, Any], exc: Exception) -> None:
    """A run whose warehouse load failed did not complete, and its row must not say so. A
    failed load renames nothing (storage/warehouse.py), so the part just written was never
    loaded: it is replaced whole, and the run keeps one row."""
    fs, _ = store.fs_and_base
    fs.delete_file(path)
    failed = row | {"status": "failed", "error": f"warehouse load failed: {type(exc).__name__}: {exc}"}
    store.write_part("runs", [failed], f"{row['run_id']}-run")
