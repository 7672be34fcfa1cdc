"""The `process-documents` flow: it only wires the steps of tasks.run together.

Ingest lists the inputs once (plan-ingest), reads them in ingest shards of files and record
ranges (each a task run that commits a batch at a time) and finishes once (finish-ingest). The
documents are then cut into deterministic shards and each shard runs segment -> classify /
summarize -> aggregate as its own task runs, on the task runner the parameters name (threads,
or Dask). A shard stage is skipped when the lake records it as finished for the same
configuration (its completion row, committed with its rows, tasks.run.pipeline.unless_done);
Prefect caches no shard stage, since a cache outside the lake cannot know what became of it.
Bookkeeping (the plan, the shards, the artifacts) are plain calls in the flow run: task runs
are for the work that may fail and be retried.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.tasks import Task, exponential_backoff

from flows import finish, observe
from flows.params import ProcessParams
from flows.runners import gpu_annotation, task_runner
from storage.datasets import Store
from tasks import ingest
from tasks.errors import Cancelled, retry_cannot_help
from tasks.ingest import IngestPlan, IngestShard
from tasks.run import pipeline, steps
from tasks.run.plan import Plan
from tasks.run.results import IngestResult, RunReport, RunResults, ShardResult, StageResult
from tasks.run.shards import Shard


def _retry_can_help(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition: a flaky disk or network gets its retries; a full disk, a
    read-only data directory, refused weights or a cancelled run fail at once."""
    return not (isinstance(state.data, BaseException) and retry_cannot_help(state.data))


RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": exponential_backoff(backoff_factor=5),
    "retry_condition_fn": _retry_can_help,
}


# Whether a shard stage is done is decided in the task, from the lake (unless_done);
# ingest decides from what is stored too (tasks/ingest/catalog.py).
SHARD_TASK: dict[str, Any] = {**RETRIES, "cache_policy": NO_CACHE}

SHARDS_IN_FLIGHT = 32  # the least; see shards_in_flight


@task(name="plan-ingest", **SHARD_TASK)
def plan_ingest_task(params: ProcessParams, store: Store) -> IngestPlan:
    plan = steps.step_plan_ingest(store, params.inputs, params.limits(), params.redact_settings())
    get_run_logger().info("ingest: %d files in %d ingest shards", plan.files, len(plan.shards))
    return plan


@task(name="ingest", task_run_name="ingest-shard-{shard.index}", **SHARD_TASK)
def ingest_shard_task(params: ProcessParams, store: Store, shard: IngestShard, run_id: str) -> ingest.IngestResult:
    """One ingest shard; its files (and record ranges) done are its progress."""
    report = observe.progress_reporter("ingest", None)
    return steps.step_ingest_shard(store, shard, run_id, params.limits(), report, params.redact_settings())


@task(name="finish-ingest", **SHARD_TASK)
def finish_ingest_task(
    params: ProcessParams,
    store: Store,
    plan: IngestPlan,
    shards: list[ingest.IngestResult],
    run_id: str,
    seconds: float,
) -> IngestResult:
    result = steps.step_finish_ingest(store, plan, shards, run_id, params.limits(), seconds, params.redact_settings())
    get_run_logger().info(
        "ingest: %d documents (%d new), %d rejected", result.documents, result.documents_new, result.rejects
    )
    return result


def run_ingest(params: ProcessParams, store: Store, runner: Any, run_id: str) -> IngestResult:
    """The inputs listed once, each ingest shard a task run on the task runner, then finished."""
    start = time.perf_counter()
    plan = plan_ingest_task(params, store)
    futures = [
        runner.submit(ingest_shard_task, {"params": params, "store": store, "shard": shard, "run_id": run_id})
        for shard in plan.shards
    ]
    shards = [future.result() for future in futures]
    return finish_ingest_task(params, store, plan, shards, run_id, time.perf_counter() - start)


def _stage_task(stage: str) -> Task[..., StageResult]:
    """A shard stage as a task run of its own (pipeline.run_stage); an inference stage reports
    its progress."""

    def run(
        params: ProcessParams,
        store: Store,
        plan: Plan,
        shard: Shard,
        run_id: str,
        progress: observe.ProgressSpec | None = None,
    ) -> StageResult:
        report = observe.progress_reporter(stage, progress) if stage in pipeline.INFERENCE else None
        return pipeline.run_stage(stage, store, plan, shard, run_id, params.device, report)

    run.__name__ = run.__qualname__ = f"{stage}_task"
    return task(name=stage, task_run_name=f"{stage}-shard-{{shard.index}}", **SHARD_TASK)(run)


STAGE_TASKS = {stage: _stage_task(stage) for stage in pipeline.STAGES}


# Not retried: the run's final row is one commit; a failure to write it is the run's error.
@task(name="record-run")
def record_task(
    params: ProcessParams,
    store: Store,
    run_id: str,
    plan: Plan | None,
    started: datetime,
    results: RunResults,
    status: str,
    error: str | None = None,
) -> RunReport:
    return steps.step_record_run(
        store,
        run_id,
        flow_run.get_id(),
        plan.config_id if plan else None,
        started,
        params.recorded(),
        results,
        status,
        error,
    )


def record_failure(
    params: ProcessParams,
    store: Store,
    run_id: str,
    plan: Plan | None,
    started: datetime,
    results: RunResults,
    exc: Exception,
) -> str:
    """The run's row, failed or cancelled; a row that cannot be written (the disk that failed
    the stage) is logged, and the stage's error is the one the run ends with. Returns the status."""
    status = "cancelled" if isinstance(exc, Cancelled) else "failed"
    try:
        record_task(params, store, run_id, plan, started, results, status, f"{type(exc).__name__}: {exc}")
    except Exception as record_exc:
        get_run_logger().warning("run %s could not be recorded as %s: %s", run_id, status, record_exc)
    return status


def announce(params: ProcessParams, store: Store, run_id: str, status: str, counts: dict[str, Any]) -> None:
    """The end-of-run event, which must not change how the run ends."""
    try:
        finish.announce_run(params, store, run_id, status, counts)
    except Exception as exc:
        get_run_logger().warning("end-of-run event not sent: %s", exc)


def run_shards(
    params: ProcessParams, store: Store, runner: Any, plan: Plan, shards: list[Shard], run_id: str
) -> RunResults:
    """Every stage of every shard as its own task run, on the task runner the parameters name
    (entered in the flow run, rather than in a subflow: a flow run costs about a second of API
    calls and shutdown), in pipeline.shard_stages' order; the results of all shards added
    up, with how many shards were skipped whole (every stage's completion marker checked out)."""
    wanted = pipeline.shard_stages(plan)
    progress = observe.start_progress(run_id, len(shards) * len(pipeline.INFERENCE.intersection(wanted)))
    gpu = gpu_annotation(params)
    in_flight: deque[dict[str, Any]] = deque()
    results: list[RunResults] = []
    unit = 0
    for shard in shards:  # submitted shard by shard, so the first results land early
        if len(in_flight) >= shards_in_flight(params):  # the oldest shard's results, its futures let go
            results.append(_shard_results(in_flight.popleft()))
        common = {"params": params, "store": store, "plan": plan, "shard": shard, "run_id": run_id}
        futures: dict[str, Any] = {}
        for stage in wanted:
            wait_for = [futures[s] for s in pipeline.AFTER[stage] if s in futures]
            if stage in pipeline.INFERENCE:
                with gpu():  # one inference task per GPU at a time on Dask
                    inputs = common | {"progress": progress.unit(unit)}
                    futures[stage] = runner.submit(STAGE_TASKS[stage], inputs, wait_for=wait_for)
                unit += 1
            else:
                futures[stage] = runner.submit(STAGE_TASKS[stage], common, wait_for=wait_for)
        in_flight.append(futures)
    results.extend(_shard_results(futures) for futures in in_flight)
    observe.finish_progress(progress)
    return pipeline.add_up(results)


def shards_in_flight(params: ProcessParams) -> int:
    """How many shards are submitted ahead of the oldest unfinished one: enough to keep every
    worker busy (a scheduler's address may hide many), few enough that the task runs held
    (futures, states, parameters) do not grow with the run."""
    return max(SHARDS_IN_FLIGHT, 4 * params.workers)


def _shard_results(futures: dict[str, Any]) -> RunResults:
    return RunResults(**{stage: future.result() for stage, future in futures.items()})


@flow(name="process-documents", log_prints=True)
def process_documents(params: ProcessParams, plan: Plan | None = None) -> RunReport:
    """Ingest, segment, classify, summarize and aggregate into the lake. `plan` is the
    one the CLI resolved from these parameters before Prefect started; a deployment's run
    resolves it here. Either way it is resolved once per run and passed down."""
    run_id, started = steps.new_run_id(), datetime.now(UTC)
    store = Store(params.data_dir, params.catalog)  # its filesystem resolved once, for every step
    results = RunResults()
    steps.step_begin_run(store, run_id, flow_run.get_id(), started, params.recorded())  # redacted inputs
    try:
        plan = plan or params.make_plan()
        with task_runner(params) as runner:  # one for ingest and the shards: a Dask cluster starts once
            ingested = run_ingest(params, store, runner, run_id)
            results = results.replace(ingest=ingested)
            shards = steps.step_shard(store, ingested.doc_ids, params.shard_documents)
            results = results.replace(shard=ShardResult(shards=len(shards)))
            results = run_shards(params, store, runner, plan, shards, run_id).replace(ingest=ingested)
    except Exception as exc:
        status = record_failure(params, store, run_id, plan, started, results, exc)
        announce(params, store, run_id, status, results.counts())
        raise
    try:  # the run's final commit: if it fails the run is not "completed", and the event says so
        report = record_task(params, store, run_id, plan, started, results, "completed")
    except Exception:
        announce(params, store, run_id, "failed", results.counts())
        raise
    observe.publish_artifacts(store, report, ingested.doc_ids)
    # The run has ended in the lake (record_task), so the report's reads see it whole.
    finish.publish_report(store, report.run_id)
    announce(params, store, run_id, report.status, report.counts)
    # Maintenance after a completed run; its failure leaves the run completed.
    try:
        if params.compact:
            get_run_logger().info("compacted the lake: %s", steps.step_compact(store, params.retain_days))
        elif merged := steps.step_merge_small_files(store, params.merge_files_over):
            get_run_logger().info("merged the lake's small files: %s", merged)
    except Exception as exc:
        get_run_logger().warning("the lake could not be compacted: %s", exc)
    return report
