"""One shard through its stages, without Prefect: the one place that says which stages a shard
runs and in which order (segment -> classify / summarize -> aggregate).

`run_shard` runs them in turn; the flow runs each as a task run of its own (progress and the GPU
annotation are per stage), iterating the same `shard_stages`. Each stage is skipped when the
data directory records it as done for the same configuration (`unless_done`).
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable

import pyarrow.compute as pc
import pyarrow.dataset as ds

from storage import completion
from storage.datasets import Store, is_in
from tasks.inference import prepare_worker
from tasks.inference.engine import Progress
from tasks.run import stages
from tasks.run.plan import Plan
from tasks.run.results import (
    AggregateResult,
    ClassifyResult,
    RunResults,
    SegmentResult,
    ShardResult,
    StageResult,
    SummarizeResult,
)
from tasks.run.shards import Shard

# The shard stages in the order they run.
STAGES = ("segment", "classify", "summarize", "aggregate")
# What each stage waits for (among those the plan runs): classify and summarize only for segment.
AFTER = {"segment": (), "classify": ("segment",), "summarize": ("segment",), "aggregate": STAGES[:3]}
INFERENCE = frozenset({"classify", "summarize"})  # the stages that run a model on the device
RESULTS: dict[str, type[StageResult]] = {
    "segment": SegmentResult,
    "classify": ClassifyResult,
    "summarize": SummarizeResult,
    "aggregate": AggregateResult,
}


def shard_stages(plan: Plan) -> list[str]:
    """The stages this plan runs on every shard, in order: no classify without a classifier."""
    wanted = {"classify": plan.classifier is not None, "summarize": plan.summarizer is not None}
    return [stage for stage in STAGES if wanted.get(stage, True)]


def run_stage(
    stage: str,
    store: Store,
    plan: Plan,
    shard: Shard,
    run_id: str,
    device: str = "cpu",
    progress: Progress | None = None,
) -> StageResult:
    """One stage of one shard, unless the data directory records it as done."""
    prepare_worker()  # what lives now lives as long as the run: no collection walks it

    def work() -> StageResult:
        if stage == "segment":
            return stages.segment(store, plan, shard, run_id)
        if stage == "classify":
            return stages.classify(store, plan, shard, run_id, device, progress)
        if stage == "summarize":
            return stages.summarize(store, plan, shard, run_id, device, progress)
        return stages.aggregate(store, plan, shard, run_id)

    return unless_done(store, stage, plan, shard, run_id, work)


def run_shard(
    store: Store,
    plan: Plan,
    shard: Shard,
    run_id: str,
    device: str = "cpu",
    progress: Callable[[str], Progress | None] | None = None,
) -> RunResults:
    """Every stage of one shard in turn; `progress(stage)` gives an inference stage its reporter."""
    results = RunResults()
    for stage in shard_stages(plan):
        report = progress(stage) if progress and stage in INFERENCE else None
        results = results.replace(**{stage: run_stage(stage, store, plan, shard, run_id, device, report)})
    return results


def add_up(per_shard: list[RunResults]) -> RunResults:
    """Every shard's results added up, with how many shards there were and how many were
    skipped whole (every stage's completion marker checked out)."""
    total = functools.reduce(operator.add, per_shard, RunResults())
    cached = sum(all(getattr(r, "shards_skipped", 0) for r in shard.stages()) for shard in per_shard)
    return total.replace(shard=ShardResult(shards=len(per_shard), shards_cached=cached))


def stage_outputs(stage: str, plan: Plan, doc_ids: list[str]) -> list[tuple[str, ds.Expression]]:
    """Where a shard stage's output lies: (table, its rows there) for each table it writes."""
    docs = is_in("doc_id", doc_ids)
    if stage == "segment":
        seg_plans = (plan.classifier_segments, plan.summarizer_segments)
        return [("segments", (pc.field("segmenter") == p.segmenter_id) & docs) for p in seg_plans if p]
    if stage == "classify" and plan.classifier:
        return [("segment_labels", (pc.field("model") == plan.classifier.model_id) & docs)]
    if stage == "summarize" and plan.summarizer:
        model = pc.field("model") == plan.summarizer.model_id
        return [("segment_summaries", model & docs), ("summary_evidence", model & docs)]
    if stage == "aggregate":
        return [("document_results", (pc.field("config_id") == plan.config_id) & docs)]
    raise ValueError(f"no outputs known for stage {stage!r} of this plan")


def unless_done(
    store: Store, stage: str, plan: Plan, shard: Shard, run_id: str, work: Callable[[], StageResult]
) -> StageResult:
    """Run one stage of one shard unless the data directory records it as done: its completion
    marker is there and every part file it names still is (storage/completion.py). After the
    work, the marker names the parts that now hold the shard's output, old and new alike, so it
    stays true of a directory that was partly deleted and then mended. `shards_skipped` says
    which it was."""
    start = time.perf_counter()
    name = completion.marker_name(stage, plan.config_id, shard.key)
    if completion.is_done(store, name):
        return RESULTS[stage](seconds=time.perf_counter() - start, shards_skipped=1)  # type: ignore[call-arg]
    result = work()
    parts = completion.output_parts(store, stage_outputs(stage, plan, list(shard.doc_ids)))
    about = {"stage": stage, "config_id": plan.config_id, "shard": shard.key, "documents": len(shard.doc_ids)}
    completion.record(store, name, parts, about | {"run_id": run_id})
    return result
