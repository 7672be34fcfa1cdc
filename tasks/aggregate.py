"""Aggregate: segment results into one result per document and configuration.

Label: the token-weighted mean of segment probabilities, where a segment weighs the tokens it
adds (its tokens minus those it shares with the previous segment), so overlap counts once.
Summary: the flow merges segment summaries extractively (tasks/merge.py). `merge_summaries`
here is the abstractive alternative measured against it (benchmarks/quality_bench.py): segment
summaries, in order, grouped to fit the summarizer's budget and summarized again, level after
level, until one remains.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow.compute as pc

from storage.datasets import Store, is_in


@dataclass(frozen=True)
class DocumentLabel:
    label: str
    score: float
    scores: dict[str, float]
    max_scores: dict[str, float]


def pool_labels(segments: Sequence[tuple[int, int, dict[str, float]]]) -> DocumentLabel:
    """Document label from (n_tokens, overlap_tokens, scores) per segment, in order."""
    totals: dict[str, float] = defaultdict(float)
    maxima: dict[str, float] = defaultdict(float)
    weight_sum = 0.0
    for n_tokens, overlap, scores in segments:
        weight = max(1, n_tokens - overlap)
        weight_sum += weight
        for label, p in scores.items():
            totals[label] += weight * p
            maxima[label] = max(maxima[label], p)
    mean = {label: total / weight_sum for label, total in totals.items()}
    best = max(mean, key=lambda k: mean[k])
    return DocumentLabel(best, mean[best], mean, dict(maxima))


def group_in_order(counts: Sequence[int], room: int, separator: int = 2) -> list[list[int]]:
    """Consecutive indices grouped so each group's tokens (with separators) fit `room`; every
    group of a multi-item input holds at least two items, so each level shrinks the list."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, count in enumerate(counts):
        extra = count + (separator if current else 0)
        if current and used + extra > room and len(current) >= 2:
            groups.append(current)
            current, used = [], 0
            extra = count
        current.append(i)
        used += extra
    if current:
        if len(current) == 1 and groups:
            groups[-1].append(current[0])
        else:
            groups.append(current)
    return groups


def merge_summaries(
    per_doc: dict[str, list[str]],
    count: Callable[[str], int],
    summarize: Callable[[list[str]], list[str]],
    room: int,
) -> dict[str, tuple[str, int]]:
    """One summary per document and the number of merge levels it took, batching each level
    across documents."""
    pending = {doc: list(items) for doc, items in per_doc.items() if items}
    result: dict[str, tuple[str, int]] = {}
    depth = 0
    while pending:
        for doc in [d for d, items in pending.items() if len(items) == 1]:
            result[doc] = (pending.pop(doc)[0], depth)
        if not pending:
            break
        depth += 1
        jobs: list[tuple[str, str]] = []
        for doc, items in pending.items():
            for group in group_in_order([count(s) for s in items], room):
                jobs.append((doc, "\n\n".join(items[i] for i in group)))
        outputs = summarize([text for _, text in jobs])
        pending = defaultdict(list)
        for (doc, _), summary in zip(jobs, outputs, strict=True):
            pending[doc].append(summary)
        pending = dict(pending)
    return result


def doc_labels(store: Store, doc_ids: list[str], segmenter_id: str, model_id: str) -> dict[str, DocumentLabel]:
    segments = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq", "n_tokens", "overlap_tokens"],
        where=(pc.field("segmenter") == segmenter_id) & is_in("doc_id", doc_ids),
    ).to_pylist()
    labels = store.read(
        "segment_labels",
        columns=["segment_id", "scores"],
        where=(pc.field("model") == model_id) & is_in("doc_id", doc_ids),
    ).to_pylist()
    scores = {r["segment_id"]: json.loads(r["scores"]) for r in labels}
    by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for seg in segments:
        if seg["segment_id"] in scores:
            by_doc[seg["doc_id"]].append(seg)
    return {
        doc: pool_labels(
            [
                (s["n_tokens"], s["overlap_tokens"], scores[s["segment_id"]])
                for s in sorted(segs, key=lambda s: s["seq"])
            ]
        )
        for doc, segs in by_doc.items()
    }


def doc_segment_summaries(store: Store, doc_ids: list[str], segmenter_id: str, model_id: str) -> dict[str, list[str]]:
    segments = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq"],
        where=(pc.field("segmenter") == segmenter_id) & is_in("doc_id", doc_ids),
    ).to_pylist()
    summaries = store.read(
        "segment_summaries",
        columns=["segment_id", "summary"],
        where=(pc.field("model") == model_id) & is_in("doc_id", doc_ids),
    ).to_pylist()
    text = {r["segment_id"]: r["summary"] for r in summaries}
    out: dict[str, list[str]] = defaultdict(list)
    for seg in sorted(segments, key=lambda s: (s["doc_id"], s["seq"])):
        if seg["segment_id"] in text:
            out[seg["doc_id"]].append(text[seg["segment_id"]])
    return dict(out)


def result_rows(
    doc_ids: list[str],
    labels: dict[str, DocumentLabel],
    summaries: dict[str, tuple[str, int]],
    n_segments: dict[str, tuple[int, int]],
    meta: dict[str, Any],
) -> list[dict[str, Any]]:
    """document_results rows; `meta` holds config_id, classifier, summarizer and run_id."""
    now = datetime.now(UTC)
    rows = []
    for doc in doc_ids:
        label = labels.get(doc)
        summary = summaries.get(doc)
        rows.append(
            {
                "doc_id": doc,
                "label": label.label if label else None,
                "label_score": label.score if label else None,
                "label_scores": json.dumps(label.scores) if label else None,
                "label_max_scores": json.dumps(label.max_scores) if label else None,
                "summary": summary[0] if summary else None,
                "summary_depth": summary[1] if summary else None,
                "n_segments": n_segments.get(doc, (0, 0))[0],
                "n_summary_segments": n_segments.get(doc, (0, 0))[1],
                "created_at": now,
                **meta,
            }
        )
    return rows
