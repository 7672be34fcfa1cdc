"""Aggregate: segment results into one result per document and configuration.

Label: the token-weighted mean of segment probabilities, where a segment weighs the tokens it
adds (its tokens minus those it shares with the previous segment), so overlap counts once.
Summary: the flow merges segment summaries extractively (tasks/aggregate/merge.py); the abstractive
alternative measured against it lives with its benchmark (benchmarks/abstractive_merge.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
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
