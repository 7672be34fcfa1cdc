"""The work of each shard stage: one call into the stage's package, its counts as a typed result.

Which stages a shard runs, in which order and under which completion marker is
tasks/run/pipeline.py's business; these functions only do the work and time it.
"""

from __future__ import annotations

import time

from storage.datasets import Store
from tasks.aggregate.aggregate import DocumentLabel, doc_labels, doc_languages, doc_segment_summaries, result_rows
from tasks.aggregate.merge import MERGE_BUDGET_FACTOR, merge_extractive, supported_only
from tasks.classify.classify import classify_segments
from tasks.inference.engine import CANCELLATION, Progress
from tasks.inference.models import load_tokenizer, pick_device
from tasks.prose import count_unclean
from tasks.run.plan import Plan
from tasks.run.results import AggregateResult, ClassifyResult, SegmentResult, SummarizeResult
from tasks.run.shards import Shard
from tasks.segment.segment import segment_documents
from tasks.summarize.summarize import summarize_segments
from tasks.tables import load_texts


def segment(store: Store, plan: Plan, shard: Shard, run_id: str) -> SegmentResult:
    """Each segmentation the plan needs (the classifier's, the summarizer's)."""
    CANCELLATION.check()  # a run stopped during ingest starts no shard
    start, counts = time.perf_counter(), dict[str, int]()
    for role, seg_plan in (("classifier", plan.classifier_segments), ("summarizer", plan.summarizer_segments)):
        if seg_plan:
            part = f"{run_id}-{shard.index:05d}-segments-{role}"
            made = segment_documents(store, list(shard.doc_ids), seg_plan.segmenter(), part)
            # The budgets in force, which may be lower than asked: a model's own limit caps them.
            made |= {"max_tokens": seg_plan.max_tokens, "overlap_tokens": seg_plan.overlap_tokens}
            counts |= {f"{role}_{k}": v for k, v in made.items()}
    return SegmentResult(seconds=time.perf_counter() - start, **counts)


def classify(
    store: Store, plan: Plan, shard: Shard, run_id: str, device: str, progress: Progress | None
) -> ClassifyResult:
    start = time.perf_counter()
    assert plan.classifier and plan.classifier_segments
    counts = classify_segments(
        store,
        plan.classifier,
        list(shard.doc_ids),
        plan.classifier_segments.segmenter_id,
        f"{run_id}-{shard.index:05d}-labels",
        pick_device(device),
        progress,
    )
    return ClassifyResult(seconds=time.perf_counter() - start, **counts)


def summarize(
    store: Store, plan: Plan, shard: Shard, run_id: str, device: str, progress: Progress | None
) -> SummarizeResult:
    start = time.perf_counter()
    assert plan.summarizer and plan.summarizer_segments
    counts = summarize_segments(
        store,
        plan.summarizer,
        list(shard.doc_ids),
        plan.summarizer_segments.segmenter_id,
        f"{run_id}-{shard.index:05d}-summaries",
        pick_device(device),
        progress,
    )
    return SummarizeResult(seconds=time.perf_counter() - start, **counts)


def pending_documents(store: Store, plan: Plan, doc_ids: list[str]) -> list[str]:
    """The documents that have no result for this configuration yet (asked for these documents
    only: a shard's read must not grow with the lake)."""
    where = {"config_id": plan.config_id, "doc_id": doc_ids}
    done = store.read("document_results", columns=["doc_id"], where=where)
    finished = set(done.column("doc_id").to_pylist())
    return [d for d in doc_ids if d not in finished]


def aggregate(store: Store, plan: Plan, shard: Shard, run_id: str) -> AggregateResult:
    """document_results for the documents that lack one for this configuration.

    Document summaries are merged extractively (tasks/aggregate/merge.py), so this stage runs no
    model (no device, no progress to report)."""
    start = time.perf_counter()
    todo = pending_documents(store, plan, list(shard.doc_ids))
    labels: dict[str, DocumentLabel] = {}
    summaries: dict[str, tuple[str, int]] = {}
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
            languages=doc_languages(store, todo, sum_seg, spec.model_id),
        )
    texts = load_texts(store, list(summaries)) if summaries else {}
    unsupported = 0
    for doc, (summary, depth) in list(summaries.items()):
        checked, removed = supported_only(summary, texts.get(doc, ""))
        summaries[doc], unsupported = (checked, depth), unsupported + removed
    meta = {
        "config_id": plan.config_id,
        "classifier": plan.classifier.model_id if plan.classifier else None,
        "summarizer": plan.summarizer.model_id if plan.summarizer else None,
        "run_id": run_id,
    }
    rows = result_rows(todo, labels, summaries, segment_counts(store, todo, cls_seg, sum_seg), meta)
    store.add("document_results", rows)
    unclean = count_unclean((summary, texts.get(doc)) for doc, (summary, _) in summaries.items())["unclean"]
    return AggregateResult(
        seconds=time.perf_counter() - start,
        document_results_new=len(rows),
        summaries_merged=sum(1 for s in summaries.values() if s[1] > 0),
        document_summaries_unclean=unclean,
        document_sentences_unsupported=unsupported,
    )


def segment_counts(store: Store, todo: list[str], cls_seg: str, sum_seg: str) -> dict[str, tuple[int, int]]:
    """Per document, how many segments each segmentation (classifier's, summarizer's) cut."""
    counts: dict[str, list[int]] = {}
    for seg_id, index in ((cls_seg, 0), (sum_seg, 1)):
        if seg_id and todo:
            where = {"segmenter": seg_id, "doc_id": todo}
            for doc in store.read("segments", columns=["doc_id"], where=where).column("doc_id").to_pylist():
                counts.setdefault(doc, [0, 0])[index] += 1
    return {d: (c[0], c[1]) for d, c in counts.items()}
