"""What each stage reports, as typed results, and a run's results added up over its shards.

Each field is a count under the name the `runs.counts` JSON gives it (users query
`counts->>'$.documents'`), so `counts()` is the row's JSON as it always was. A field left None was
not reported (a shard whose stage was skipped reports no counts, only that it was skipped) and
stays out of the JSON. Results add up with `+`: counts are summed, settings (the budgets in
force, the same for every shard) and everything not a number are kept from the first shard that
reports them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Self

# Fields that are neither counts nor in the JSON: the run's document ids, the stage's wall time.
NOT_COUNTS = frozenset({"doc_ids", "seconds", "shards_skipped"})


@dataclass
class StageResult:
    """The base of every stage's result: its wall time, and how `+` adds two of them."""

    STAGE: ClassVar[str] = ""
    SETTINGS: ClassVar[frozenset[str]] = frozenset()  # the same for every shard: kept, not summed

    seconds: float = 0.0

    def __add__(self, other: Self) -> Self:
        values = {
            f.name: _add(f.name in self.SETTINGS, getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        }
        return type(self)(**values)

    def counts(self) -> dict[str, Any]:
        """This stage's part of the `runs.counts` JSON, keys in field order."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_COUNTS}
        out = {k: v for k, v in out.items() if v is not None}
        if hasattr(self, "shards_skipped"):
            out[f"{self.STAGE}_shards_skipped"] = self.shards_skipped
        return out


def _add(setting: bool, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return b if a is None else a
    if setting or isinstance(a, bool) or not isinstance(a, int | float):
        return a
    return a + b


@dataclass
class IngestResult(StageResult):
    STAGE = "ingest"

    doc_ids: list[str] = field(default_factory=list)
    files: int = 0
    files_unchanged: int = 0
    documents: int = 0
    documents_new: int = 0
    documents_known: int = 0
    rejects: int = 0
    rejects_new: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Self) -> Self:
        """Counts summed; the documents of both, first seen first, once; reasons merged."""
        total = super().__add__(other)
        total.doc_ids = list(dict.fromkeys(self.doc_ids + other.doc_ids))
        total.documents, total.documents_known = len(total.doc_ids), len(total.doc_ids) - total.documents_new
        reasons = dict(self.rejects_by_reason)
        for reason, n in other.rejects_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
        total.rejects_by_reason = dict(sorted(reasons.items()))
        return total


@dataclass
class ShardResult(StageResult):
    """How the documents were cut; `shards_cached` is known once every shard has run."""

    STAGE = "shard"

    shards: int = 0
    shards_cached: int | None = None


@dataclass
class SegmentResult(StageResult):
    """Segments made per role (the classifier's and the summarizer's segmentations)."""

    STAGE = "segment"
    SETTINGS = frozenset(f"{r}_{k}" for r in ("classifier", "summarizer") for k in ("max_tokens", "overlap_tokens"))

    classifier_documents_segmented: int | None = None
    classifier_segments_new: int | None = None
    classifier_max_tokens: int | None = None  # the budgets in force: a model's own limit may lower them
    classifier_overlap_tokens: int | None = None
    summarizer_documents_segmented: int | None = None
    summarizer_segments_new: int | None = None
    summarizer_max_tokens: int | None = None
    summarizer_overlap_tokens: int | None = None
    shards_skipped: int = 0


@dataclass
class ClassifyResult(StageResult):
    STAGE = "classify"

    segments_classified: int | None = None
    classify_tokens: int | None = None
    classify_truncated_tokens: int | None = None
    segments_fallback: int | None = None  # labelled by the classifier's fallback decoder
    shards_skipped: int = 0


@dataclass
class SummarizeResult(StageResult):
    STAGE = "summarize"

    segments_summarized: int | None = None
    summarize_input_tokens: int | None = None
    summarize_output_tokens: int | None = None
    summarize_truncated_tokens: int | None = None
    segment_summaries_unclean: int | None = None  # failing the clean-prose checks after repair: tasks/prose.py
    # Each generated sentence is kept or removed for one reason (tasks/summarize/sentence_filter.py):
    # summary_sentences == kept + the three removed counts; rewritten counts meta lead-ins stripped.
    summary_sentences: int | None = None
    summary_sentences_kept: int | None = None
    summary_sentences_removed_meta: int | None = None
    summary_sentences_removed_continuation: int | None = None
    summary_sentences_removed_unsupported: int | None = None
    summary_sentences_rewritten_meta: int | None = None
    shards_skipped: int = 0


@dataclass
class AggregateResult(StageResult):
    STAGE = "aggregate"

    document_results_new: int | None = None
    summaries_merged: int | None = None
    document_summaries_unclean: int | None = None
    # merged document summary sentences without support in the document's text, removed
    document_sentences_unsupported: int | None = None
    shards_skipped: int = 0


@dataclass
class RunResults:
    """A run's results per stage, in the order the stages run; a stage that did not run (or
    not yet, in a failed run) is None. One shard's results add to another's with `+`."""

    ingest: IngestResult | None = None
    shard: ShardResult | None = None
    segment: SegmentResult | None = None
    classify: ClassifyResult | None = None
    summarize: SummarizeResult | None = None
    aggregate: AggregateResult | None = None

    def __add__(self, other: RunResults) -> RunResults:
        def add(a: Any, b: Any) -> Any:
            return a + b if a is not None and b is not None else (b if a is None else a)

        return RunResults(**{f.name: add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def stages(self) -> list[StageResult]:
        return [r for r in (getattr(self, f.name) for f in fields(self)) if r is not None]

    def counts(self) -> dict[str, Any]:
        """The `runs.counts` JSON: every stage's counts, in stage order."""
        out: dict[str, Any] = {}
        for result in self.stages():
            out |= result.counts()
        return out

    def stage_seconds(self) -> dict[str, float]:
        return {r.STAGE: round(r.seconds, 3) for r in self.stages()}

    @property
    def model_tokens(self) -> int:
        """Tokens the models read and wrote: what a run's tokens per second counts."""
        classify, summarize = self.classify or ClassifyResult(), self.summarize or SummarizeResult()
        parts = (classify.classify_tokens, summarize.summarize_input_tokens, summarize.summarize_output_tokens)
        return sum(n or 0 for n in parts)

    def replace(self, **changes: Any) -> RunResults:
        return dataclasses.replace(self, **changes)


@dataclass
class RunReport:
    """A run as its `runs` row records it, with its results per stage: what the flow returns,
    the CLI prints and the artifacts show. `counts` is the row's JSON (the stages' counts)."""

    run_id: str
    flow_run_id: str | None
    config_id: str | None
    started_at: datetime
    finished_at: datetime
    status: str
    results: RunResults
    counts: dict[str, Any]
    stage_seconds: dict[str, float]
    seconds: float
    tokens_per_s: float | None
    error: str | None = None
    data_dir: str = ""
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # `longdoc evaluate` only

    def row(self, parameters: str) -> dict[str, Any]:
        """The run's row in `runs` (its parameters as JSON)."""
        return {
            "run_id": self.run_id,
            "flow_run_id": self.flow_run_id,
            "config_id": self.config_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "parameters": parameters,
            "counts": json.dumps(self.counts),
            "stage_seconds": json.dumps(self.stage_seconds),
            "seconds": self.seconds,
            "tokens_per_s": self.tokens_per_s,
            "error": self.error,
        }
