"""The `process-documents` flow: it only wires the stages of tasks.steps together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.params import ProcessParams
from tasks import steps
from tasks.engine import Progress
from tasks.plan import Plan


def _progress(stage: str) -> Progress:
    logger = get_run_logger()
    shown = {"step": -1}

    def report(done: int, total: int) -> None:
        step = 10 * done // max(total, 1)  # a line every tenth of the work
        if step != shown["step"]:
            shown["step"] = step
            logger.info("%s: %d/%d", stage, done, total)

    return report


@task(name="plan", retries=0)
def plan_task(params: ProcessParams) -> Plan:
    return params.make_plan()


@task(name="ingest", retries=2, retry_delay_seconds=5)
def ingest_task(params: ProcessParams, run_id: str) -> dict[str, Any]:
    result = steps.step_ingest(params.data_dir, params.inputs, run_id, params.limits())
    get_run_logger().info(
        "ingest: %d documents (%d new), %d rejected", result["documents"], result["documents_new"], result["rejects"]
    )
    return result


@task(name="segment")
def segment_task(params: ProcessParams, plan: Plan, doc_ids: list[str], run_id: str) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds": 0.0}
    for role, seg_plan in (("classifier", plan.classifier_segments), ("summarizer", plan.summarizer_segments)):
        if seg_plan:
            out = steps.step_segment(params.data_dir, seg_plan, doc_ids, run_id, role)
            results["seconds"] += out.pop("seconds")
            results.update(out)
    return results


@task(name="classify")
def classify_task(params: ProcessParams, plan: Plan, doc_ids: list[str], run_id: str) -> dict[str, Any]:
    return steps.step_classify(params.data_dir, plan, doc_ids, run_id, params.device, _progress("classify"))


@task(name="summarize")
def summarize_task(params: ProcessParams, plan: Plan, doc_ids: list[str], run_id: str) -> dict[str, Any]:
    return steps.step_summarize(params.data_dir, plan, doc_ids, run_id, params.device, _progress("summarize"))


@task(name="aggregate")
def aggregate_task(params: ProcessParams, plan: Plan, doc_ids: list[str], run_id: str) -> dict[str, Any]:
    return steps.step_aggregate(params.data_dir, plan, doc_ids, run_id, params.device, _progress("merge summaries"))


@task(name="record-run", retries=2, retry_delay_seconds=2)
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


@flow(name="process-documents", log_prints=True)
def process_documents(params: ProcessParams) -> dict[str, Any]:
    """Ingest, segment, classify, summarize, aggregate, and load the warehouse."""
    run_id, started = steps.new_run_id(), datetime.now(UTC)
    stages: dict[str, dict[str, Any]] = {}
    plan: Plan | None = None
    try:
        plan = plan_task(params)
        stages["ingest"] = ingest_task(params, run_id)
        doc_ids = stages["ingest"]["doc_ids"]
        stages["segment"] = segment_task(params, plan, doc_ids, run_id)
        if plan.classifier:
            stages["classify"] = classify_task(params, plan, doc_ids, run_id)
        if plan.summarizer:
            stages["summarize"] = summarize_task(params, plan, doc_ids, run_id)
        stages["aggregate"] = aggregate_task(params, plan, doc_ids, run_id)
    except Exception as exc:
        record_task(params, run_id, plan, started, stages, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return record_task(params, run_id, plan, started, stages, "completed") | {"data_dir": params.data_dir}
