"""Evaluate a run against a labelled record file: document results beside the truncation
baseline every run already holds (the first segment's label and summary).

Metrics: accuracy and macro-F1 of labels; ROUGE-1/2/L F-measure (Google's `rouge-score`, the
reference ROUGE-1.5.5 reimplementation) of summaries; the share of summaries that fail the
clean-prose checks. Each is given for all documents and for those longer than one segment
(a one-segment document's result *is* its first segment's, so only there can they differ).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.datasets import Store, split_uri
from tasks.errors import LongdocError
from tasks.formats.limits import Limits, RejectedInput
from tasks.formats.readers import read_documents
from tasks.prose import prose_issues

SYSTEMS = ("document", "first_segment")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class Reference:
    doc_id: str
    text: str
    label: str | None
    summary: str | None


@dataclass(frozen=True)
class Prediction:
    """One document's results: the whole-document system and the first-segment baseline."""

    label: str | None
    first_label: str | None
    n_segments: int
    summary: str | None
    first_summary: str | None
    n_summary_segments: int


def read_references(path: str) -> list[Reference]:
    """The records of a labelled JSONL/Parquet file, one per distinct text (as ingest keeps them)."""
    from pathlib import PurePosixPath

    fs, inner = split_uri(path)
    name = PurePosixPath(inner)
    try:
        with fs.open_input_stream(inner) as source:
            data = source.read(_MAX_BYTES + 1)
        docs = [d for d in read_documents(path, name.suffix.lower(), name.stem, data, Limits()) if d.reject is None]
    except (OSError, FileNotFoundError) as exc:
        raise LongdocError(f"{path}: cannot read it ({exc})") from exc
    except RejectedInput as exc:
        raise LongdocError(f"{path}: {exc}") from exc
    refs: dict[str, Reference] = {}
    for doc in docs:
        if doc.text.strip() and doc.doc_id not in refs and doc.format in ("jsonl", "parquet"):
            label, summary = doc.metadata.get("label"), doc.metadata.get("summary")
            refs[doc.doc_id] = Reference(
                doc.doc_id,
                doc.text,
                str(label) if label not in (None, "") else None,
                str(summary) if summary not in (None, "") else None,
            )
    if not refs:
        raise LongdocError(f"{path}: no records with a 'text' field (evaluate reads .jsonl or .parquet)")
    return list(refs.values())


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over every class that is gold or predicted."""
    scores = []
    for label in sorted(set(gold) | set(predicted)):
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


class UnicodeTokenizer:
    """rouge-score's default tokenizer keeps only [a-z0-9], so it scores any other script as empty.
    This one keeps letters of every script (CJK a character at a time) and stems Latin words
    of more than three letters with Porter, as the default does: English scores are unchanged."""

    _TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_\u3040-\u30ff\u3400-\u9fff]+")

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        tokens = self._TOKEN.findall(text.lower())
        return [self._stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


def rouge(references: Sequence[str], summaries: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE F-measure per type over the pairs."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=UnicodeTokenizer())
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for ref, summary in zip(references, summaries, strict=True):
        for kind, score in scorer.score(ref, summary).items():
            totals[kind] += score.fmeasure
    return {kind: total / len(references) for kind, total in totals.items()}


def metric_rows(refs: Sequence[Reference], predictions: dict[str, Prediction]) -> list[dict[str, Any]]:
    """(metric, system, subset, value, n_documents) for every metric the references allow."""
    rows: list[dict[str, Any]] = []

    def add(metric: str, system: str, subset: str, value: float, n: int) -> None:
        rows.append({"metric": metric, "system": system, "subset": subset, "value": value, "n_documents": n})

    for subset in ("all", "multi_segment"):
        labelled = [
            (r.label, predictions[r.doc_id])
            for r in refs
            if r.label and r.doc_id in predictions and predictions[r.doc_id].label is not None
        ]
        labelled = [(g, p) for g, p in labelled if subset == "all" or p.n_segments > 1]
        if labelled:
            gold = [g for g, _ in labelled]
            for system, pred in (
                ("document", [p.label or "" for _, p in labelled]),
                ("first_segment", [p.first_label or "" for _, p in labelled]),
            ):
                add("accuracy", system, subset, accuracy(gold, pred), len(gold))
                add("macro_f1", system, subset, macro_f1(gold, pred), len(gold))
        summarized = [
            (r, predictions[r.doc_id])
            for r in refs
            if r.doc_id in predictions and predictions[r.doc_id].summary is not None
        ]
        summarized = [(r, p) for r, p in summarized if subset == "all" or p.n_summary_segments > 1]
        for system in SYSTEMS:
            texts = [(p.summary if system == "document" else p.first_summary) or "" for _, p in summarized]
            if not summarized:
                continue
            sources = [r.text for r, _ in summarized]
            unclean = sum(bool(prose_issues(t, s)) for t, s in zip(texts, sources, strict=True))
            add("unclean_summaries", system, subset, unclean / len(texts), len(texts))
            with_ref = [(r.summary, t) for (r, _), t in zip(summarized, texts, strict=True) if r.summary]
            if with_ref:
                scores = rouge([a for a, _ in with_ref], [b for _, b in with_ref])
                for kind, value in scores.items():
                    add(kind, system, subset, value, len(with_ref))
    return rows


def _first_segments(store: Store, doc_ids: list[str], segmenter_id: str, table: str, model_id: str) -> dict[str, Any]:
    """Per document: (number of segments, the first segment's row in `table` for this model)."""
    segments = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq"],
        where={"segmenter": segmenter_id, "doc_id": doc_ids},
    ).to_pylist()
    first = {s["segment_id"]: s["doc_id"] for s in segments if s["seq"] == 0}
    column = "label" if table == "segment_labels" else "summary"
    rows = store.read(
        table,
        columns=["segment_id", column],
        where={"model": model_id, "segment_id": list(first)},
    ).to_pylist()
    return {first[r["segment_id"]]: r[column] for r in rows}


def collect_predictions(store: Store, plan: Any, doc_ids: list[str]) -> dict[str, Prediction]:
    """The document results of this plan's configuration, with each document's first segment's."""
    results = store.read(
        "document_results",
        columns=["doc_id", "label", "summary", "n_segments", "n_summary_segments"],
        where={"config_id": plan.config_id, "doc_id": doc_ids},
    ).to_pylist()
    first_labels: dict[str, Any] = {}
    first_summaries: dict[str, Any] = {}
    if plan.classifier and plan.classifier_segments:
        first_labels = _first_segments(
            store, doc_ids, plan.classifier_segments.segmenter_id, "segment_labels", plan.classifier.model_id
        )
    if plan.summarizer and plan.summarizer_segments:
        first_summaries = _first_segments(
            store, doc_ids, plan.summarizer_segments.segmenter_id, "segment_summaries", plan.summarizer.model_id
        )
    return {
        r["doc_id"]: Prediction(
            r["label"],
            first_labels.get(r["doc_id"]),
            r["n_segments"] or 0,
            r["summary"],
            first_summaries.get(r["doc_id"]),
            r["n_summary_segments"] or 0,
        )
        for r in results
    }


def evaluate_run(store: Store, plan: Any, refs: Sequence[Reference], run_id: str, data: str) -> list[dict[str, Any]]:
    """Score a finished run's results for these references; write them to `evaluations`."""
    from datetime import UTC, datetime

    predictions = collect_predictions(store, plan, [r.doc_id for r in refs])
    now = datetime.now(UTC)
    rows = [
        {"run_id": run_id, **row, "config_id": plan.config_id, "data": data, "created_at": now}
        for row in metric_rows(refs, predictions)
    ]
    store.add("evaluations", rows, run_id)
    return rows


def side_by_side(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, int, float | None, float | None]]:
    """(metric, subset, n_documents, document value, first-segment value), in a stable order."""
    order = ("accuracy", "macro_f1", *ROUGE_TYPES, "unclean_summaries")
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        cell = table.setdefault((row["metric"], row["subset"]), {"n": row["n_documents"]})
        cell[row["system"]] = row["value"]
    keys = sorted(table, key=lambda k: (k[1] != "all", order.index(k[0]) if k[0] in order else len(order), k[0]))
    return [(m, s, table[m, s]["n"], table[m, s].get("document"), table[m, s].get("first_segment")) for m, s in keys]
