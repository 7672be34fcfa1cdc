"""The `process-documents` flow: it only wires the stages of tasks.run.steps together.

Ingest reads every input once; the documents are then cut into deterministic shards and each
shard runs segment -> classify / summarize -> aggregate as its own task runs, on the task
runner the parameters name (threads, or Dask). A shard stage is skipped when the data directory
records it as finished for the same configuration (a completion marker whose part files are all
still there, tasks.run.steps.unless_done); Prefect caches no shard stage, since a cache outside the
data directory cannot know what became of it. Bookkeeping (the plan, the shards, the artifacts)
are plain calls in the flow run: task runs are for the work that may fail and be retried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.tasks import Task, exponential_backoff

from flows import observe
from flows.params import ProcessParams
from flows.runners import gpu_annotation, task_runner
from tasks.errors import Cancelled, retry_cannot_help
from tasks.run import steps
from tasks.run.plan import Plan
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


# Whether a shard stage is done is decided in the task, from the data directory (unless_done).
SHARD_TASK: dict[str, Any] = {**RETRIES, "cache_policy": NO_CACHE}


@task(name="ingest", **RETRIES)
def ingest_task(params: ProcessParams, run_id: str) -> dict[str, Any]:
    result = steps.step_ingest(params.data_dir, params.inputs, run_id, params.limits())
    get_run_logger().info(
        "ingest: %d documents (%d new), %d rejected", result["documents"], result["documents_new"], result["rejects"]
    )
    return result


@task(name="segment", task_run_name="segment-shard-{shard.index}", **SHARD_TASK)
def segment_task(params: ProcessParams, plan: Plan, shard: Shard, run_id: str) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        results: dict[str, Any] = {"seconds": 0.0}
        for role, seg_plan in (("classifier", plan.classifier_segments), ("summarizer", plan.summarizer_segments)):
            if seg_plan:
                out = steps.step_segment(params.data_dir, seg_plan, list(shard.doc_ids), run_id, role, shard.index)
                results["seconds"] += out.pop("seconds")
                results.update(out)
        return results

    return steps.unless_done(params.data_dir, "segment", plan, shard, run_id, work)


@task(name="classify", task_run_name="classify-shard-{shard.index}", **SHARD_TASK)
def classify_task(
    params: ProcessParams, plan: Plan, shard: Shard, run_id: str, progress: observe.ProgressSpec
) -> dict[str, Any]:
    report, docs = observe.progress_reporter("classify", progress), list(shard.doc_ids)
    return steps.unless_done(
        params.data_dir,
        "classify",
        plan,
        shard,
        run_id,
        lambda: steps.step_classify(params.data_dir, plan, docs, run_id, params.device, report, shard.index),
    )


@task(name="summarize", task_run_name="summarize-shard-{shard.index}", **SHARD_TASK)
def summarize_task(
    params: ProcessParams, plan: Plan, shard: Shard, run_id: str, progress: observe.ProgressSpec
) -> dict[str, Any]:
    report, docs = observe.progress_reporter("summarize", progress), list(shard.doc_ids)
    return steps.unless_done(
        params.data_dir,
        "summarize",
        plan,
        shard,
        run_id,
        lambda: steps.step_summarize(params.data_dir, plan, docs, run_id, params.device, report, shard.index),
    )


@task(name="aggregate", task_run_name="aggregate-shard-{shard.index}", **SHARD_TASK)
def aggregate_task(params: ProcessParams, plan: Plan, shard: Shard, run_id: str) -> dict[str, Any]:
    return steps.unless_done(
        params.data_dir,
        "aggregate",
        plan,
        shard,
        run_id,
        lambda: steps.step_aggregate(params.data_dir, plan, list(shard.doc_ids), run_id, shard=shard.index),
    )


# Not retried: a retry after a failed warehouse load would add a second row for the run.
@task(name="record-run")
def record_task(
    params: ProcessParams,
    run_id: str,
    plan: Plan | None,
    started: datetime,
    stages: dict[str, dict[str, Any]],
    status: str,
    error: str | None = None,
) -> dict[str, Any]:
    return steps.step_record_run(
        params.data_dir,
        run_id,
        flow_run.get_id(),
        plan.config_id if plan else None,
        started,
        params.model_dump(),
        stages,
        status,
        error,
    )


def record_failure(
    params: ProcessParams, run_id: str, plan: Plan | None, started: datetime, stages: dict[str, Any], exc: Exception
) -> None:
    """The run's row, failed or cancelled; a row that cannot be written (the disk that failed
    the stage) is logged, and the stage's error is the one the run ends with."""
    status = "cancelled" if isinstance(exc, Cancelled) else "failed"
    try:
        record_task(params, run_id, plan, started, stages, status, f"{type(exc).__name__}: {exc}")
    except Exception as record_exc:
        get_run_logger().warning("run %s could not be recorded as %s: %s", run_id, status, record_exc)


def run_shards(params: ProcessParams, plan: Plan, shards: list[Shard], run_id: str) -> dict[str, dict[str, Any]]:
    """Every stage of every shard as its own task run, on the task runner the parameters name
    (entered here, in the flow run, rather than in a subflow: a flow run costs about a second
    of API calls and shutdown); results per stage, and under "shard" how many shards were
    skipped whole (every stage's completion marker checked out)."""
    progress = observe.start_progress(run_id, len(shards) * (bool(plan.classifier) + bool(plan.summarizer)))
    futures: dict[str, list[Any]] = {"segment": [], "classify": [], "summarize": [], "aggregate": []}
    gpu = gpu_annotation(params)
    unit = 0
    with task_runner(params) as runner:
        for shard in shards:  # submitted shard by shard, so the first results land early
            common = {"params": params, "plan": plan, "shard": shard, "run_id": run_id}
            segmented = runner.submit(segment_task, common)
            futures["segment"].append(segmented)
            inferred = []
            for stage, inference_task, wanted in (
                ("classify", classify_task, plan.classifier),
                ("summarize", summarize_task, plan.summarizer),
            ):
                if wanted:
                    with gpu():  # one inference task per GPU at a time on Dask
                        future = runner.submit(
                            inference_task, common | {"progress": progress.unit(unit)}, wait_for=[segmented]
                        )
                    futures[stage].append(future)
                    inferred.append(future)
                    unit += 1
            futures["aggregate"].append(runner.submit(aggregate_task, common, wait_for=[segmented, *inferred]))
        results = {stage: observe.combine_shard_results(items) for stage, items in futures.items() if items}
    observe.finish_progress(progress)
    results["shard"] = {"shards": len(shards), "shards_cached": shards_skipped_whole(futures), "seconds": 0.0}
    return results


def shards_skipped_whole(futures: dict[str, list[Any]]) -> int:
    """How many shards had every stage skipped (each stage's futures are in shard order)."""
    per_shard = zip(*([(stage, f) for f in items] for stage, items in futures.items() if items), strict=True)
    return sum(all(f.result().get(f"{stage}_shards_skipped") for stage, f in stages) for stages in per_shard)


@flow(name="process-documents", log_prints=True)
def process_documents(params: ProcessParams) -> dict[str, Any]:
    """Ingest, segment, classify, summarize, aggregate, and load the warehouse."""
    run_id, started = steps.new_run_id(), datetime.now(UTC)
    stages: dict[str, dict[str, Any]] = {}
    plan: Plan | None = None
    try:
        plan = params.make_plan()
        stages["ingest"] = ingest_task(params, run_id)
        doc_ids = stages["ingest"]["doc_ids"]
        shards = steps.step_shard(params.data_dir, doc_ids, params.shard_documents)
        stages["shard"] = {"shards": len(shards), "seconds": 0.0}
        stages |= run_shards(params, plan, shards, run_id)
    except Exception as exc:
        record_failure(params, run_id, plan, started, stages, exc)
        raise
    # A failure here (the warehouse load) is recorded by the task itself: never "completed".
    report = record_task(params, run_id, plan, started, stages, "completed") | {"data_dir": params.data_dir}
    observe.publish_artifacts(params.data_dir, report, doc_ids)
    return report
