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

from storage import runlog
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


def step_merge_small_files(store: Store, over: int) -> dict[str, int] | None:
    """After every completed run: the lake's small data files merged once there are too many."""
    from storage import warehouse

    return warehouse.merge_small_files(store, over)


def step_compact(store: Store, retain_days: float) -> dict[str, int]:
    """The lake's maintenance after a run (the nightly's `compact` parameter)."""
    from datetime import timedelta

    from storage import warehouse

    return warehouse.compact(store, timedelta(days=retain_days))
