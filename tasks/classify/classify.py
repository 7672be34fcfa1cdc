"""Classify: a label and the full score distribution for every segment.

Three backends, picked from the model: a fine-tuned sequence classifier (its own id2label),
zero-shot by embedding similarity between the segment and each label's description, or
zero-shot by label likelihood on an instruct decoder (tasks/classify/decoder.py). An embedding
classifier may have a decoder as its fallback: a segment whose tokens are mostly unknown to the
embedding model (an [UNK] share over the threshold: Chinese text for English-only MiniLM) is
labelled by the decoder instead, and its row says so (`labelled_by`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.datasets import Store
from tasks.classify.decoder import decoder_model_id, score_answers
from tasks.errors import ConfigError
from tasks.inference.engine import BatchLimits, Progress, inference, pad_batch, run_batched, shifted
from tasks.inference.models import ModelRef, load_model, load_tokenizer
from tasks.inference.worker import plain_backend
from tasks.language import detect_language
from tasks.tables import pending_segments

DEFAULT_LABELS = ("business", "technology", "science", "politics", "education", "health", "law", "culture")
LABEL_TEMPLATE = "This text is about {}."
ZERO_SHOT_TEMPERATURE = 0.05  # cosine similarities sit close together; sharpen before softmax
# Calibrated on the development corpus with MiniLM's tokenizer (BENCHMARKS.md): English text has
# no [UNK] at all (QMSum, Gutenberg: max 0.000), a Chinese abstract 0.39-0.85 (median 0.66).
DEFAULT_UNK_THRESHOLD = 0.1


@dataclass(frozen=True)
class ClassifierSpec:
    ref: ModelRef
    labels: tuple[str, ...]
    fallback: ModelRef | None = None  # a decoder for segments the embedding model cannot represent
    unk_threshold: float = DEFAULT_UNK_THRESHOLD

    def __post_init__(self) -> None:
        if self.ref.kind in ("embedding", "decoder") and len(self.labels) < 2:
            raise ConfigError("zero-shot classification needs at least two --labels")
        if self.fallback is not None and (self.ref.kind != "embedding" or self.fallback.kind != "decoder"):
            raise ConfigError("only an embedding classifier takes a fallback, and the fallback must be a decoder")

    @property
    def own_id(self) -> str:
        """The classifier model itself, without its fallback: what `labelled_by` names."""
        if self.ref.kind == "decoder":
            return decoder_model_id(self.ref, self.labels)
        if self.ref.kind != "embedding":
            return self.ref.short_id
        # The template shapes every score, so a changed one is a changed model.
        digest = hashlib.sha256("\x1f".join((LABEL_TEMPLATE, *self.labels)).encode()).hexdigest()[:8]
        return f"{self.ref.short_id}:zero-shot-{digest}"

    @property
    def fallback_id(self) -> str | None:
        return decoder_model_id(self.fallback, self.labels) if self.fallback else None

    @property
    def model_id(self) -> str:
        """The `model` column: which model, for zero-shot which labels, and any fallback with
        the [UNK] share over which it takes over."""
        if self.fallback_id is None:
            return self.own_id
        return f"{self.own_id}+{self.fallback_id}@unk>{self.unk_threshold:g}"


def encode_inputs(tokenizer: Any, texts: Sequence[str], max_len: int) -> tuple[list[list[int]], list[int]]:
    """Token ids with special tokens, text that looks like special tokens kept as text; rows
    over the model's limit are cut and the cut tokens counted."""
    rows, truncated = [], []
    # the worker's plain copy: a per-call split_special_tokens would set it on the shared tokenizer
    encoded = [e.ids for e in plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=True)]
    for ids in encoded:
        cut = max(0, len(ids) - max_len)
        if cut:
            ids = ids[: max_len - 1] + ids[-1:]  # keep the closing special token
        rows.append(ids)
        truncated.append(cut)
    return rows, truncated


def _pooling_mode(path: str) -> str:
    config = Path(path) / "1_Pooling" / "config.json"
    if config.exists() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


def embed(model: Any, ids: Any, mask: Any, pooling: str) -> Any:
    """L2-normalised sentence embeddings."""
    import torch

    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def score_texts(
    spec: ClassifierSpec,
    texts: Sequence[str],
    device: str,
    progress: Progress | None = None,
    limits: BatchLimits | None = None,
) -> list[tuple[dict[str, float], int, int]]:
    """Per text: its label distribution, input tokens and truncated tokens, from the spec's
    own model (never its fallback: `label_texts` routes)."""
    import torch

    if spec.ref.kind == "decoder":
        answers = score_answers(spec.ref, spec.labels, texts, device, progress, limits)
        return [(a.probabilities(spec.labels), a.n_input_tokens, a.truncated_tokens) for a in answers]
    tokenizer = load_tokenizer(spec.ref.path)
    model = load_model(spec.ref.path, spec.ref.kind, device)
    rows, truncated = encode_inputs(tokenizer, texts, spec.ref.max_input_tokens)
    pad_id = tokenizer.pad_token_id or 0
    if spec.ref.kind == "embedding":
        pooling = _pooling_mode(spec.ref.path)
        label_rows, _ = encode_inputs(tokenizer, [LABEL_TEMPLATE.format(lb) for lb in spec.labels], 512)
        with inference(device):
            label_ids, label_mask = pad_batch(label_rows, pad_id, left=False)
            label_vectors = embed(model, label_ids.to(device), label_mask.to(device), pooling)
        names = list(spec.labels)
    else:
        id2label = model.config.id2label
        names = [str(id2label[i]) for i in range(len(id2label))]

    def run(batch: list[int]) -> list[dict[str, float]]:
        ids, mask = pad_batch([rows[i] for i in batch], pad_id, left=False)
        ids, mask = ids.to(device), mask.to(device)
        with inference(device):
            if spec.ref.kind == "embedding":
                sims = embed(model, ids, mask, pooling) @ label_vectors.T
                probs = torch.softmax(sims / ZERO_SHOT_TEMPERATURE, dim=-1)
            else:
                probs = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        return [dict(zip(names, p.tolist(), strict=True)) for p in probs.cpu()]

    limits = limits or BatchLimits.for_device(device, generation=False)
    scores = run_batched([len(r) for r in rows], run, limits, progress)
    return [(s, len(r), t) for s, r, t in zip(scores, rows, truncated, strict=True)]


@dataclass(frozen=True)
class SegmentScore:
    """One segment's labels, and which model gave them."""

    scores: dict[str, float]
    n_input_tokens: int
    truncated_tokens: int
    labelled_by: str
    unk_share: float | None  # of the embedding model's tokens; None for other classifiers
    language: str | None  # the prompt's language, for a decoder


def unk_shares(tokenizer: Any, texts: Sequence[str]) -> list[float]:
    """The share of each text's tokens that the tokenizer maps to its unknown token."""
    unk = tokenizer.unk_token_id
    encoded = plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)
    return [sum(t == unk for t in e.ids) / len(e.ids) if e.ids and unk is not None else 0.0 for e in encoded]


def label_texts(
    spec: ClassifierSpec,
    texts: Sequence[str],
    device: str,
    progress: Progress | None = None,
    limits: BatchLimits | None = None,
) -> list[SegmentScore]:
    """Per text, its labels from the classifier, or from its fallback when the classifier's
    tokenizer maps more than `unk_threshold` of the text to [UNK]."""
    shares: list[float | None] = [None] * len(texts)
    if spec.ref.kind == "embedding":
        shares = list(unk_shares(load_tokenizer(spec.ref.path), texts))
    routed = [spec.fallback is not None and (s or 0.0) > spec.unk_threshold for s in shares]
    own = [i for i, r in enumerate(routed) if not r]
    other = [i for i, r in enumerate(routed) if r]
    results: dict[int, SegmentScore] = {}
    if own:
        scored = score_texts(spec, [texts[i] for i in own], device, progress, limits)
        languages = [detect_language(texts[i]) if spec.ref.kind == "decoder" else None for i in own]
        for i, (scores, n, cut), lang in zip(own, scored, languages, strict=True):
            results[i] = SegmentScore(scores, n, cut, spec.own_id, shares[i], lang)
    if other and spec.fallback is not None and spec.fallback_id is not None:
        answers = score_answers(
            spec.fallback,
            spec.labels,
            [texts[i] for i in other],
            device,
            shifted(progress, len(own), len(texts)),
            limits,
        )
        for i, a in zip(other, answers, strict=True):
            results[i] = SegmentScore(
                a.probabilities(spec.labels),
                a.n_input_tokens,
                a.truncated_tokens,
                spec.fallback_id,
                shares[i],
                a.language,
            )
    return [results[i] for i in range(len(texts))]


def classify_segments(
    store: Store,
    spec: ClassifierSpec,
    doc_ids: list[str],
    segmenter_id: str,
    part: str,
    device: str,
    progress: Progress | None = None,
    chunk_rows: int = 2048,
) -> dict[str, int]:
    """Label every segment of these documents that has no label from this classifier yet,
    a chunk at a time, so memory stays flat (the rows are committed when the stage ends)."""
    total, chunks = pending_segments(store, segmenter_id, doc_ids, "segment_labels", spec.model_id, chunk_rows)
    counts = {"segments_classified": 0, "classify_tokens": 0, "classify_truncated_tokens": 0, "segments_fallback": 0}
    for chunk in chunks:
        scored = label_texts(
            spec, [r["text"] for r in chunk], device, shifted(progress, counts["segments_classified"], total)
        )
        rows = []
        for segment, s in zip(chunk, scored, strict=True):
            label = max(s.scores, key=lambda name: s.scores[name])
            rows.append(
                {
                    "segment_id": segment["segment_id"],
                    "model": spec.model_id,
                    "doc_id": segment["doc_id"],
                    "label": label,
                    "score": s.scores[label],
                    "scores": json.dumps(s.scores, ensure_ascii=False),
                    "n_input_tokens": s.n_input_tokens,
                    "truncated_tokens": s.truncated_tokens,
                    "labelled_by": s.labelled_by,
                    "unk_share": s.unk_share,
                    "language": s.language,
                }
            )
            counts["classify_tokens"] += s.n_input_tokens
            counts["classify_truncated_tokens"] += s.truncated_tokens
            counts["segments_fallback"] += s.labelled_by != spec.own_id
        store.add("segment_labels", rows)
        counts["segments_classified"] += len(rows)
    return counts
