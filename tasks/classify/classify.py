"""Classify: a label and the full score distribution for every segment.

Two backends, picked from the model: a fine-tuned sequence classifier (its own id2label), or
zero-shot by embedding similarity between the segment and each label's description.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.datasets import Store
from tasks.errors import ConfigError
from tasks.inference.engine import BatchLimits, Progress, inference, pad_batch, run_batched, shifted
from tasks.inference.models import ModelRef, load_model, load_tokenizer
from tasks.inference.worker import plain_backend
from tasks.tables import pending_segments

DEFAULT_LABELS = ("business", "technology", "science", "politics", "education", "health", "law", "culture")
LABEL_TEMPLATE = "This text is about {}."
ZERO_SHOT_TEMPERATURE = 0.05  # cosine similarities sit close together; sharpen before softmax


@dataclass(frozen=True)
class ClassifierSpec:
    ref: ModelRef
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.ref.kind == "embedding" and len(self.labels) < 2:
            raise ConfigError("zero-shot classification needs at least two --labels")

    @property
    def model_id(self) -> str:
        """The `model` column: which model, and for zero-shot which labels."""
        if self.ref.kind != "embedding":
            return self.ref.short_id
        # The template shapes every score, so a changed one is a changed model.
        digest = hashlib.sha256("\x1f".join((LABEL_TEMPLATE, *self.labels)).encode()).hexdigest()[:8]
        return f"{self.ref.short_id}:zero-shot-{digest}"


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
    """Per text: its label distribution, input tokens and truncated tokens."""
    import torch

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
    counts = {"segments_classified": 0, "classify_tokens": 0, "classify_truncated_tokens": 0}
    for chunk in chunks:
        scored = score_texts(
            spec, [r["text"] for r in chunk], device, shifted(progress, counts["segments_classified"], total)
        )
        rows = []
        for segment, (scores, n_input, truncated) in zip(chunk, scored, strict=True):
            label = max(scores, key=lambda name: scores[name])
            rows.append(
                {
                    "segment_id": segment["segment_id"],
                    "model": spec.model_id,
                    "doc_id": segment["doc_id"],
                    "label": label,
                    "score": scores[label],
                    "scores": json.dumps(scores),
                    "n_input_tokens": n_input,
                    "truncated_tokens": truncated,
                }
            )
            counts["classify_tokens"] += n_input
            counts["classify_truncated_tokens"] += truncated
        store.add("segment_labels", rows)
        counts["segments_classified"] += len(rows)
    return counts
