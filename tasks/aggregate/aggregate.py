"""Aggregate: segment results into one result per document and configuration.

Label: the token-weighted mean of segment probabilities, where a segment weighs the tokens it
adds (its tokens minus those it shares with the previous segment), so overlap counts once.
Summary: the flow merges segment summaries extractively (tasks/aggregate/merge.py); the abstractive
alternative measured against it lives with its benchmark (benchmarks/abstractive_merge.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from storage.datasets import Store
from tasks.tables import segment_results


@dataclass(frozen=True)
class DocumentLabel:
    label: str
    score: float
    scores: dict[str, float]
    max_scores: dict[str, float]
    labelled_by: dict[str, int] = field(default_factory=dict)  # model -> segments it labelled


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
    per_doc = segment_results(store, doc_ids, segmenter_id, "segment_labels", model_id, ["scores", "labelled_by"])
    labels = {}
    for doc, pairs in per_doc.items():
        pooled = pool_labels([(s["n_tokens"], s["overlap_tokens"], json.loads(r["scores"])) for s, r in pairs])
        # rows written before `labelled_by` existed were labelled by the model they name
        by = Counter(r["labelled_by"] or model_id for _, r in pairs)
        labels[doc] = replace(pooled, labelled_by=dict(sorted(by.items())))
    return labels


def doc_segment_summaries(store: Store, doc_ids: list[str], segmenter_id: str, model_id: str) -> dict[str, list[str]]:
    per_doc = segment_results(store, doc_ids, segmenter_id, "segment_summaries", model_id, ["summary"])
    return {doc: [r["summary"] for _, r in pairs] for doc, pairs in per_doc.items()}


def doc_languages(store: Store, doc_ids: list[str], segmenter_id: str, model_id: str) -> dict[str, str]:
    """Per document, the language most of its summarized tokens were detected in (segments
    weigh by their tokens; rows written before languages were stored count as unknown)."""
    per_doc = segment_results(store, doc_ids, segmenter_id, "segment_summaries", model_id, ["language"])
    languages: dict[str, str] = {}
    for doc, pairs in per_doc.items():
        weights: dict[str, int] = defaultdict(int)
        for seg, row in pairs:
            if row["language"]:
                weights[row["language"]] += seg["n_tokens"]
        if weights:
            languages[doc] = max(weights, key=lambda lang: (weights[lang], lang))
    return languages


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
                "labelled_by": json.dumps(label.labelled_by) if label else None,
                "summary": summary[0] if summary else None,
                "summary_depth": summary[1] if summary else None,
                "n_segments": n_segments.get(doc, (0, 0))[0],
                "n_summary_segments": n_segments.get(doc, (0, 0))[1],
                "created_at": now,
                **meta,
            }
        )
    return rows
