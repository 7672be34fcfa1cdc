"""The stages of a run as plain functions over a data directory, ids and a plan.

Each returns counts and its own wall time; the Prefect flow only chains them. A stage skips
whatever an earlier run with the same configuration already produced.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from storage import completion, warehouse
from storage.datasets import Store, is_in
from tasks.aggregate.aggregate import DocumentLabel, doc_labels, doc_segment_summaries, result_rows
from tasks.aggregate.merge import MERGE_BUDGET_FACTOR, merge_extractive
from tasks.classify.classify import classify_segments
from tasks.formats.limits import Limits
from tasks.inference.engine import CANCELLATION, Progress
from tasks.inference.models import keep_out_of_garbage_collection, load_tokenizer, pick_device
from tasks.ingest.stage import ingest
from tasks.prose import count_unclean
from tasks.run.plan import Plan, SegmentPlan
from tasks.run.shards import Shard, make_shards
from tasks.segment.segment import segment_documents
from tasks.summarize.summarize import summarize_segments
from tasks.tables import load_texts


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def step_ingest(data_dir: str, inputs: list[str], run_id: str, limits: Limits | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    result = ingest(Store(data_dir), inputs, run_id, limits)
    return {
        "doc_ids": result.doc_ids,
        "files": result.files,
        "files_unchanged": result.files_unchanged,
        "documents": len(result.doc_ids),
        "documents_new": result.new_documents,
        "documents_known": result.known_documents,
        "rejects": result.rejects,
        "rejects_new": result.rejects_new,
        "rejects_by_reason": result.rejects_by_reason,
        "seconds": time.perf_counter() - start,
    }


def step_shard(data_dir: str, doc_ids: list[str], max_documents: int) -> list[Shard]:
    return make_shards(Store(data_dir), doc_ids, max_documents)


def stage_outputs(stage: str, plan: Plan, doc_ids: list[str]) -> list[tuple[str, ds.Expression]]:
    """Where a shard stage's output lies: (table, its rows there) for each table it writes."""
    docs = is_in("doc_id", doc_ids)
    if stage == "segment":
        seg_plans = (plan.classifier_segments, plan.summarizer_segments)
        return [("segments", (pc.field("segmenter") == p.segmenter_id) & docs) for p in seg_plans if p]
    if stage == "classify" and plan.classifier:
        return [("segment_labels", (pc.field("model") == plan.classifier.model_id) & docs)]
    if stage == "summarize" and plan.summarizer:
        return [("segment_summaries", (pc.field("model") == plan.summarizer.model_id) & docs)]
    if stage == "aggregate":
        return [("document_results", (pc.field("config_id") == plan.config_id) & docs)]
    raise ValueError(f"no outputs known for stage {stage!r} of this plan")


def unless_done(
    data_dir: str, stage: str, plan: Plan, shard: Shard, run_id: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run one stage of one shard unless the data directory records it as done: its completion
    marker is there and every part file it names still is (storage/completion.py). After the
    work, the marker names the parts that now hold the shard's output, old and new alike, so it
    stays true of a directory that was partly deleted and then mended. `<stage>_shards_skipped`
    says which it was."""
    store, start = Store(data_dir), time.perf_counter()
    name = completion.marker_name(stage, plan.config_id, shard.key)
    if completion.is_done(store, name):
        return {f"{stage}_shards_skipped": 1, "seconds": time.perf_counter() - start}
    result = work()
    parts = completion.output_parts(store, stage_outputs(stage, plan, list(shard.doc_ids)))
    about = {"stage": stage, "config_id": plan.config_id, "shard": shard.key, "documents": len(shard.doc_ids)}
    completion.record(store, name, parts, about | {"run_id": run_id})
    return result | {f"{stage}_shards_skipped": 0}


def step_segment(
    data_dir: str, plan: SegmentPlan, doc_ids: list[str], run_id: str, role: str, shard: int = 0
) -> dict[str, Any]:
    keep_out_of_garbage_collection()
    CANCELLATION.check()  # a run stopped during ingest starts no shard
    start = time.perf_counter()
    counts = segment_documents(Store(data_dir), doc_ids, plan.segmenter(), f"{run_id}-{shard:05d}-segments-{role}")
    # The budgets in force, which may be lower than asked: a model's own limit caps them.
    counts |= {"max_tokens": plan.max_tokens, "overlap_tokens": plan.overlap_tokens}
    return {f"{role}_{k}": v for k, v in counts.items()} | {"seconds": time.perf_counter() - start}


def step_classify(
    data_dir: str,
    plan: Plan,
    doc_ids: list[str],
    run_id: str,
    device: str,
    progress: Progress | None = None,
    shard: int = 0,
) -> dict[str, Any]:
    keep_out_of_garbage_collection()
    start = time.perf_counter()
    assert plan.classifier and plan.classifier_segments
    counts = classify_segments(
        Store(data_dir),
        plan.classifier,
        doc_ids,
        plan.classifier_segments.segmenter_id,
        f"{run_id}-{shard:05d}-labels",
        pick_device(device),
        progress,
    )
    return counts | {"seconds": time.perf_counter() - start}


def step_summarize(
    data_dir: str,
    plan: Plan,
    doc_ids: list[str],
    run_id: str,
    device: str,
    progress: Progress | None = None,
    shard: int = 0,
) -> dict[str, Any]:
    keep_out_of_garbage_collection()
    start = time.perf_counter()
    assert plan.summarizer and plan.summarizer_segments
    counts = summarize_segments(
        Store(data_dir),
        plan.summarizer,
        doc_ids,
        plan.summarizer_segments.segmenter_id,
        f"{run_id}-{shard:05d}-summaries",
        pick_device(device),
        progress,
    )
    return counts | {"seconds": time.perf_counter() - start}


def pending_documents(data_dir: str, plan: Plan, doc_ids: list[str]) -> list[str]:
    """The documents that have no result for this configuration yet."""
    done = Store(data_dir).read("document_results", columns=["doc_id"], where=pc.field("config_id") == plan.config_id)
    finished = set(done.column("doc_id").to_pylist())
    return [d for d in doc_ids if d not in finished]


def step_aggregate(data_dir: str, plan: Plan, doc_ids: list[str], run_id: str, shard: int = 0) -> dict[str, Any]:
    """document_results for the documents that lack one for this configuration.

    Document summaries are merged extractively (tasks/aggregate/merge.py), so this step runs no model
    (no device, no progress to report)."""
    start = time.perf_counter()
    store = Store(data_dir)
    todo = pending_documents(data_dir, plan, doc_ids)
    labels: dict[str, DocumentLabel] = {}
    summaries: dict[str, tuple[str, int]] = {}
    counts: dict[str, list[int]] = {}
    cls_seg = plan.classifier_segments.segmenter_id if plan.classifier_segments else ""
    sum_seg = plan.summarizer_segments.segmenter_id if plan.summarizer_segments else ""
    if plan.classifier and todo:
        labels = doc_labels(store, todo, cls_seg, plan.classifier.model_id)
    if plan.summarizer and plan.summarizer_segments and todo:
        spec = plan.summarizer
        tokenizer = load_tokenizer(spec.ref.path)
        summaries = merge_extractive(
            doc_segment_summaries(store, todo, sum_seg, spec.model_id),
            count=lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]),
            budget=MERGE_BUDGET_FACTOR * spec.max_new_tokens,
        )
    for seg_id, index in ((cls_seg, 0), (sum_seg, 1)):
        if seg_id and todo:
            segs = store.read(
                "segments", columns=["doc_id"], where=(pc.field("segmenter") == seg_id) & is_in("doc_id", todo)
            )
            for doc in segs.column("doc_id").to_pylist():
                pair = counts.setdefault(doc, [0, 0])
                pair[index] += 1
    meta = {
        "config_id": plan.config_id,
        "classifier": plan.classifier.model_id if plan.classifier else None,
        "summarizer": plan.summarizer.model_id if plan.summarizer else None,
        "run_id": run_id,
    }
    rows = result_rows(todo, labels, summaries, {d: (c[0], c[1]) for d, c in counts.items()}, meta)
    store.write_part("document_results", rows, f"{run_id}-{shard:05d}-results")
    merges = sum(1 for s in summaries.values() if s[1] > 0)
    texts = load_texts(store, list(summaries)) if summaries else {}
    unclean = count_unclean((summary, texts.get(doc)) for doc, (summary, _) in summaries.items())["unclean"]
    return {
        "document_results_new": len(rows),
        "summaries_merged": merges,
        "document_summaries_unclean": unclean,
        "seconds": time.perf_counter() - start,
    }


# Settings reported by every shard alike; all other numbers are counts and add up.
SETTINGS = {f"{role}_{k}" for role in ("classifier", "summarizer") for k in ("max_tokens", "overlap_tokens")}


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One stage's results over all shards: counts and seconds summed, settings kept."""
    total: dict[str, Any] = {}
    for result in results:
        for key, value in result.items():
            if key in SETTINGS or not isinstance(value, int | float):
                total.setdefault(key, value)
            else:
                total[key] = total.get(key, 0) + value
    return total


def step_record_run(
    data_dir: str,
    run_id: str,
    flow_run_id: str | None,
    config_id: str | None,
    started_at: datetime,
    parameters: dict[str, Any],
    stage_results: dict[str, dict[str, Any]],
    status: str,
    error: str | None = None,
) -> dict[str, Any]:
    """Write this run's row to `runs` and bring the warehouse up to date."""
    finished = datetime.now(UTC)
    counts: dict[str, Any] = {}
    for result in stage_results.values():
        counts.update({k: v for k, v in result.items() if k not in ("seconds", "doc_ids")})
    store = Store(data_dir)
    counts.update(warehouse.parts_skipped_count(store))  # foreign or damaged part files
    stage_seconds = {stage: round(r.get("seconds", 0.0), 3) for stage, r in stage_results.items()}
    model_tokens = sum(
        counts.get(k, 0) for k in ("classify_tokens", "summarize_input_tokens", "summarize_output_tokens")
    )
    model_seconds = stage_seconds.get("classify", 0) + stage_seconds.get("summarize", 0)
    row = {
        "run_id": run_id,
        "flow_run_id": flow_run_id,
        "config_id": config_id,
        "started_at": started_at,
        "finished_at": finished,
        "status": status,
        "parameters": json.dumps(parameters, default=str),
        "counts": json.dumps(counts),
        "stage_seconds": json.dumps(stage_seconds),
        "seconds": (finished - started_at).total_seconds(),
        "tokens_per_s": model_tokens / model_seconds if model_seconds > 0 else None,
        "error": error,
    }
    path = store.write_part("runs", [row], f"{run_id}-run")
    try:
        added = warehouse.sync(store)
    except Exception as exc:
        if status == "completed" and path:
            _rewrite_as_failed(store, path, row, exc)
        raise
    return {**row, "counts": counts, "stage_seconds": stage_seconds, "warehouse_rows_added": added}


def _rewrite_as_failed(store: Store, path: str, row: dict[str, Any], exc: Exception) -> None:
    """A run whose warehouse load failed did not complete, and its row must not say so. A
    failed load renames nothing (storage/warehouse.py), so the part just written was never
    loaded: it is replaced whole, and the run keeps one row."""
    fs, _ = store.fs_and_base
    fs.delete_file(path)
    failed = row | {"status": "failed", "error": f"warehouse load failed: {type(exc).__name__}: {exc}"}
    store.write_part("runs", [failed], f"{row['run_id']}-run")
