"""The processing plan: models resolved, segment budgets fixed, and the configuration's id.

A plan holds names, paths and numbers only, so it travels between tasks and processes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.aggregate.merge import MERGE_METHOD
from tasks.classify.classify import DEFAULT_LABELS, DEFAULT_UNK_THRESHOLD, ClassifierSpec
from tasks.classify.decoder import DECODER_SEGMENT_TOKENS, decoder_overhead
from tasks.errors import ConfigError
from tasks.inference.frames import special_frame
from tasks.inference.models import ModelRef, load_tokenizer, resolve
from tasks.segment.segmenter import Segmenter
from tasks.summarize.summarize import DEFAULT_SUMMARY_SEGMENT_TOKENS, SummarizerSpec, frame_overhead


@dataclass(frozen=True)
class SegmentPlan:
    """How one model's segments are cut."""

    tokenizer_path: str
    tokenizer_name: str
    max_tokens: int
    overlap_tokens: int
    overhead_tokens: int

    def segmenter(self) -> Segmenter:
        return Segmenter(
            load_tokenizer(self.tokenizer_path),
            self.tokenizer_name,
            self.max_tokens,
            self.overlap_tokens,
            self.overhead_tokens,
        )

    @property
    def segmenter_id(self) -> str:
        return self.segmenter().segmenter_id


@dataclass(frozen=True)
class Plan:
    classifier: ClassifierSpec | None
    classifier_segments: SegmentPlan | None
    summarizer: SummarizerSpec | None
    summarizer_segments: SegmentPlan | None
    redaction: str | None = None  # the redaction settings' key (tasks/redact), None without --redact

    @property
    def config_id(self) -> str:
        """Stable for the same models, labels, prompts and segmentation; changes with any. A
        model counts by its whole fingerprint (the content of its files), and by the name its
        results are stored under (model_id), so a renamed copy is processed again rather than
        credited with rows that name another model."""
        key: dict[str, Any] = {
            "classifier": self.classifier.model_id if self.classifier else None,
            "classifier_weights": self.classifier.ref.fingerprint if self.classifier else None,
            # the fallback decoder and its threshold are in model_id; its whole fingerprint here
            "classifier_fallback_weights": self.classifier.fallback.fingerprint
            if self.classifier and self.classifier.fallback
            else None,
            "classifier_segments": asdict(self.classifier_segments) if self.classifier_segments else None,
            "summarizer": self.summarizer.model_id if self.summarizer else None,
            "summarizer_weights": self.summarizer.ref.fingerprint if self.summarizer else None,
            "summarizer_segments": asdict(self.summarizer_segments) if self.summarizer_segments else None,
            "merge": MERGE_METHOD if self.summarizer else None,
        }
        if self.redaction:  # only when on: every config_id made without it stays as it was
            key["redaction"] = self.redaction
        for part in ("classifier_segments", "summarizer_segments"):
            if key[part]:
                key[part].pop("tokenizer_path")  # where a model lies does not change results
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _segment_plan(
    ref: ModelRef, overhead: int, natural: int, max_tokens: int | None, overlap: int | None
) -> SegmentPlan:
    limit = min(max_tokens or natural, natural)
    if limit <= overhead:
        raise ConfigError(f"--max-tokens {limit} leaves no room for text in {ref.name} ({overhead} tokens of its own)")
    text_budget = limit - overhead
    most = text_budget // 2  # the segmenter's own bound: each window must move on by half its text
    if overlap is None:  # the default fits any budget
        return SegmentPlan(ref.path, ref.short_id, limit, min(limit // 8, most), overhead)
    if overlap > most:  # never clamped: a different overlap would be a different request
        raise ConfigError(
            f"--overlap-tokens {overlap} is too large for {ref.name}: its segments hold {text_budget} tokens "
            f"of text ({limit} less {overhead} of the model's own), and the overlap may be at most half, {most}"
        )
    return SegmentPlan(ref.path, ref.short_id, limit, overlap, overhead)


def make_plan(
    classifier: str | None,
    labels: list[str] | None,
    summarizer: str | None,
    max_tokens: int | None,
    overlap_tokens: int | None,
    max_new_tokens: int,
    cache_dir: Path | None,
    classifier_fallback: str | None = None,
    unk_threshold: float = DEFAULT_UNK_THRESHOLD,
    redaction: str | None = None,
) -> Plan:
    """Resolve the models (None skips a stage) and fix each one's segmentation. An embedding
    classifier gets `classifier_fallback` (a decoder) for text its tokenizer cannot represent."""
    cls_spec = cls_seg = sum_spec = sum_seg = None
    if classifier is not None:
        ref = resolve(classifier, "classifier", cache_dir)
        zero_shot = ref.kind in ("embedding", "decoder")
        chosen = tuple(labels) if labels else DEFAULT_LABELS if zero_shot else ()
        fallback = None
        if ref.kind == "embedding" and classifier_fallback is not None:
            fallback = resolve(classifier_fallback, "classifier", cache_dir)
            if fallback.kind != "decoder":
                raise ConfigError(
                    f"--classifier-fallback {classifier_fallback} is a {fallback.kind} model, not a decoder"
                )
        cls_spec = ClassifierSpec(ref, chosen, fallback, unk_threshold)
        if ref.kind == "decoder":  # its prompt and answers around the text; a classifier's budget
            overhead = decoder_overhead(load_tokenizer(ref.path), chosen)
            natural = ref.max_input_tokens if max_tokens else DECODER_SEGMENT_TOKENS  # as asked, up to its context
        else:
            before, after = special_frame(load_tokenizer(ref.path))
            overhead, natural = len(before) + len(after), ref.max_input_tokens
        cls_seg = _segment_plan(ref, overhead, min(natural, ref.max_input_tokens), max_tokens, overlap_tokens)
    if summarizer is not None:
        ref = resolve(summarizer, "summarizer", cache_dir)
        sum_spec = SummarizerSpec(ref, max_new_tokens)
        natural = min(DEFAULT_SUMMARY_SEGMENT_TOKENS, sum_spec.max_input_tokens)
        if max_tokens:
            natural = sum_spec.max_input_tokens
        sum_seg = _segment_plan(ref, frame_overhead(ref), natural, max_tokens, overlap_tokens)
    return Plan(cls_spec, cls_seg, sum_spec, sum_seg, redaction)
