"""Support by meaning: the span of a text whose sentence embedding is closest to a sentence's.

A paraphrase ("The team agreed on a yellow case" for "Marketing: so yellow then? ... yeah, yellow
it is") shares few words with its source, so the lexical measure (tasks/evidence.py) misses it;
an embedding model longdoc already ships (all-MiniLM-L6-v2, English) scores it by meaning. The
candidate spans are the lexical measure's units and runs of up to `MAX_WINDOW_UNITS` of them
(at most evidence.MAX_SPAN_CHARS), embedded once per text. Calibrated on the development
corpus (benchmarks/evidence_calibration.py, BENCHMARKS.md); used for English text, where the
model has a vocabulary: for Chinese the lexical CJK-bigram measure stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.evidence import MAX_SPAN_CHARS, Evidence, Support

MAX_WINDOW_UNITS = 3
# max(lexical, semantic) >= this, on QMSum reference sentences against their own meeting vs the
# next one (benchmarks/evidence_calibration.py --semantic-meetings 20, single units): BENCHMARKS.md.
SEMANTIC_THRESHOLD = 0.5
_BATCH = 64


@dataclass(frozen=True)
class Embedder:
    """A sentence-embedding model (mean pooling, L2-normalised), with its tokenizer's limit."""

    model: Any
    tokenizer: Any
    max_tokens: int

    @classmethod
    def load(cls, path: str, max_tokens: int, device: str = "cpu") -> Embedder:
        from tasks.inference.models import load_model, load_tokenizer

        return cls(load_model(path, "embedding", device), load_tokenizer(path), max_tokens)

    def __call__(self, texts: list[str]) -> Any:
        import torch

        order = sorted(range(len(texts)), key=lambda k: len(texts[k]))  # batches of like length: little padding
        out = []
        for k in range(0, len(order), _BATCH):
            batch = [texts[i] for i in order[k : k + _BATCH]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            weights = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1))
        if not out:
            return torch.zeros((0, 1))
        vectors = torch.empty_like(torch.cat(out))
        vectors[torch.tensor(order)] = torch.cat(out)
        return vectors


def windows(evidence: Evidence, max_units: int = MAX_WINDOW_UNITS) -> list[tuple[int, int]]:
    """(first unit, last unit) of every run of 1..max_units consecutive units of at most
    MAX_SPAN_CHARS (a single unit always)."""
    units = evidence.units
    out = []
    for i in range(len(units)):
        for j in range(i, min(len(units), i + max_units)):
            if j > i and units[j][1] - units[i][0] > MAX_SPAN_CHARS:
                break
            out.append((i, j))
    return out


class SemanticEvidence:
    """A text's candidate spans embedded once; `supports(sentences)` gives each sentence its
    closest span by cosine similarity (offsets as Evidence gives them)."""

    def __init__(self, evidence: Evidence, embedder: Embedder, max_units: int = MAX_WINDOW_UNITS) -> None:
        self.evidence = evidence
        self.embedder = embedder
        self.windows = windows(evidence, max_units)
        units, text = evidence.units, evidence.text
        self.vectors = embedder([text[units[i][0] : units[j][1]] for i, j in self.windows]) if self.windows else None

    def supports(self, sentences: list[str]) -> list[Support]:
        offset = self.evidence.offset
        if self.vectors is None or not sentences:
            return [Support(offset, offset, 0.0) for _ in sentences]
        similarity = self.embedder(sentences) @ self.vectors.T
        best, index = similarity.max(dim=1)
        units = self.evidence.units
        out = []
        for score, k in zip(best.tolist(), index.tolist(), strict=True):
            i, j = self.windows[k]
            out.append(Support(offset + units[i][0], offset + units[j][1], round(max(0.0, score), 4)))
        return out
