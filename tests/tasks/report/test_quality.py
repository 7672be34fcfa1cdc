"""The end-of-run figures from a `runs.counts` JSON, read tolerantly, and the judgement of a
run against the alerts' thresholds."""

from __future__ import annotations

import pytest

from tasks.report import QualityThresholds, run_figures


def test_figures_from_counts_tolerate_missing_and_future_keys() -> None:
    counts = {
        "documents": 8,
        "rejects": 2,
        "classify_truncated_tokens": 5,
        "summarize_truncated_tokens": 7,
        "summary_sentences_unsupported": 3,  # a key the summaries work adds; spelled its way
        "document_sentences_unsupported": 1,
    }
    figures = run_figures(counts, previous_documents=16)
    assert (figures.documents, figures.rejects, figures.rejected_share) == (8, 2, 0.2)
    assert (figures.truncated_tokens, figures.unsupported_summaries, figures.documents_vs_previous) == (12, 4, 0.5)
    bare = run_figures({}, previous_documents=None)  # a run that failed before ingest finished
    assert (bare.documents, bare.rejected_share, bare.truncated_tokens) == (0, 0.0, 0)
    assert bare.unsupported_summaries is None and bare.documents_vs_previous is None
    assert run_figures({"documents": True, "rejects": "2"}, 0).documents == 0  # not counts: ignored


def test_each_threshold_breaks_alone_and_none_is_off() -> None:
    thresholds = QualityThresholds(
        rejected_share_above=0.2,
        truncated_tokens_above=10,
        unsupported_summaries_above=3,
        documents_vs_previous_below=0.5,
    )
    fine = run_figures({"documents": 8, "rejects": 2, "classify_truncated_tokens": 10}, previous_documents=16)
    assert thresholds.breaches(fine) == []  # at each limit, not above or below it
    assert len(thresholds.breaches(run_figures({"documents": 7, "rejects": 2}, 14))) == 1
    assert len(thresholds.breaches(run_figures({"documents": 8, "classify_truncated_tokens": 11}, 8))) == 1
    assert len(thresholds.breaches(run_figures({"documents": 8, "x_unsupported": 4}, 8))) == 1
    assert thresholds.breaches(run_figures({"documents": 7}, 15)) == ["documents vs previous run 0.47 < 0.5"]
    everything = run_figures({"documents": 1, "rejects": 9, "classify_truncated_tokens": 99, "unsupported": 9}, 10)
    assert len(thresholds.breaches(everything)) == 4
    assert QualityThresholds().breaches(everything) == []  # nothing configured: nothing judged


def test_unknown_threshold_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown thresholds"):
        QualityThresholds.from_mapping({"rejected_share": 0.2})
    assert QualityThresholds.from_mapping(None) == QualityThresholds()
