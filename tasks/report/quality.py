"""A finished run's figures (what the end-of-run event carries) and the data-quality thresholds
they are judged against.

The figures come from the run's `runs.counts` JSON, read tolerantly: a key a stage did not report
(or a stage that does not exist in this version) is None, never an error. Prefect's automations
cannot compare numbers in an event's payload (their metric triggers know only lateness,
duration and successes), so the run judges its own figures and labels its event with the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

TRUNCATED_KEYS = ("classify_truncated_tokens", "summarize_truncated_tokens")
# Counts of summary sentences removed as unsupported by the text (the summaries issue): every
# integer count whose key names them, so a later spelling of the key is still found.
UNSUPPORTED_MARK = "unsupported"


@dataclass(frozen=True)
class RunFigures:
    """What one run did, as the end-of-run event and the alerts see it."""

    documents: int
    rejects: int
    rejected_share: float  # rejects / (documents + rejects); 0 when nothing came in
    truncated_tokens: int
    unsupported_summaries: int | None  # None: the run's version does not count them
    previous_documents: int | None  # the previous completed run over the same inputs
    documents_vs_previous: float | None  # documents / previous_documents

    def payload(self) -> dict[str, Any]:
        return asdict(self)


def run_figures(counts: dict[str, Any], previous_documents: int | None) -> RunFigures:
    documents, rejects = _int(counts.get("documents")), _int(counts.get("rejects"))
    unsupported = [v for k, v in counts.items() if UNSUPPORTED_MARK in k and isinstance(v, int)]
    return RunFigures(
        documents=documents,
        rejects=rejects,
        rejected_share=rejects / (documents + rejects) if documents + rejects else 0.0,
        truncated_tokens=sum(_int(counts.get(key)) for key in TRUNCATED_KEYS),
        unsupported_summaries=sum(unsupported) if unsupported else None,
        previous_documents=previous_documents,
        documents_vs_previous=documents / previous_documents if previous_documents else None,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class QualityThresholds:
    """Limits a completed run must keep; None switches a check off. The alerts' configuration
    (deployments/automations.yaml) sets them; `longdoc alerts install` hands them to the runs."""

    rejected_share_above: float | None = None
    truncated_tokens_above: int | None = None
    unsupported_summaries_above: int | None = None
    documents_vs_previous_below: float | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> QualityThresholds:
        known = {f.name for f in fields(cls)}
        if unknown := set(values or {}) - known:
            raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {sorted(known)}")
        return cls(**(values or {}))

    def breaches(self, figures: RunFigures) -> list[str]:
        """One line per broken threshold, in the order of the fields; empty when the run is fine."""
        out = []
        if _above(figures.rejected_share, self.rejected_share_above):
            out.append(f"rejected share {figures.rejected_share:.2f} > {self.rejected_share_above}")
        if _above(figures.truncated_tokens, self.truncated_tokens_above):
            out.append(f"truncated tokens {figures.truncated_tokens} > {self.truncated_tokens_above}")
        if _above(figures.unsupported_summaries, self.unsupported_summaries_above):
            out.append(f"unsupported summaries {figures.unsupported_summaries} > {self.unsupported_summaries_above}")
        ratio, floor = figures.documents_vs_previous, self.documents_vs_previous_below
        if ratio is not None and floor is not None and ratio < floor:
            out.append(f"documents vs previous run {ratio:.2f} < {floor}")
        return out


def _above(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value > limit
