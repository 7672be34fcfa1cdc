"""One shard through its stages, without Prefect: the one place that says which stages a shard
runs and in which order (segment -> classify / summarize -> aggregate).

`run_shard` runs them in turn; the flow runs each as a task run of its own (progress and the GPU
annotation are per stage), iterating the same `shard_stages`. Each stage is skipped when the
lake records it as done for the same configuration (`unless_done`).
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable

from storage.datasets import Store
from storage.lakeio import Completion
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
    """The stages this plan runs on every shard, in order: no classify without a classifier, no
    segment without a model to segment for (a stage with no work still costs a task run and
    its lake transactions)."""
    wanted = {
        "segment": plan.classifier_segments is not None or plan.summarizer_segments is not None,
        "classify": plan.classifier is not None,
        "summarize": plan.summarizer is not None,
    }
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

    def work(staged: Store) -> StageResult:
        if stage == "segment":
            return stages.segment(staged, plan, shard, run_id)
        if stage == "classify":
            return stages.classify(staged, plan, shard, run_id, device, progress)
        if stage == "summarize":
            return stages.summarize(staged, plan, shard, run_id, device, progress)
        return stages.aggregate(staged, plan, shard, run_id)

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


def unless_done(
    store: Store, stage: str, plan: Plan, shard: Shard, run_id: str, work: Callable[[Store], StageResult]
) -> StageResult:
    """Run one stage of one shard unless the lake records it as done. The stage's rows are held
    (a staged store) and committed at its end in one transaction with its completion row, so a
    stage is done exactly when its rows are stored; a stage killed before that commit left
    nothing and runs again. When another writer committed the same stage meanwhile, its rows
    stand and this one's are dropped (`shards_skipped` says which it was)."""
    start = time.perf_counter()
    done = Completion(stage, plan.config_id, shard.key)
    if store.is_done(done):
        return RESULTS[stage](seconds=time.perf_counter() - start, shards_skipped=1)  # type: ignore[call-arg]
    staged = store.staged()
    result = work(staged)
    store.commit(staged.rows(), run_id, event="stage", done=done)
    return result
