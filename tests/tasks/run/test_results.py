"""Typed stage results: added up over shards, and serialized to the `runs.counts` JSON exactly as
the string-keyed dicts they replace were (users query `counts->>'$.documents'` and the like)."""

from __future__ import annotations

from tasks.run.pipeline import add_up
from tasks.run.results import (
    AggregateResult,
    ClassifyResult,
    IngestResult,
    RunResults,
    SegmentResult,
    SummarizeResult,
)


def _shard(segments: int, tokens: int, max_tokens: int) -> RunResults:
    return RunResults(
        segment=SegmentResult(
            seconds=0.25,
            classifier_documents_segmented=2,
            classifier_segments_new=segments,
            classifier_max_tokens=max_tokens,
            classifier_overlap_tokens=32,
        ),
        classify=ClassifyResult(
            seconds=1.5, segments_classified=segments, classify_tokens=tokens, classify_truncated_tokens=0
        ),
        aggregate=AggregateResult(
            seconds=0.5, document_results_new=2, summaries_merged=0, document_summaries_unclean=0
        ),
    )


def _skipped() -> RunResults:
    """A shard whose every stage the data directory records as done: it reports only that."""
    return RunResults(
        segment=SegmentResult(seconds=0.01, shards_skipped=1),
        classify=ClassifyResult(seconds=0.01, shards_skipped=1),
        aggregate=AggregateResult(seconds=0.01, shards_skipped=1),
    )


def test_shards_add_up_to_the_counts_json_of_old() -> None:
    ingest = IngestResult(
        seconds=0.1,
        doc_ids=["a", "b", "c", "d", "e", "f"],
        files=3,
        files_unchanged=1,
        documents=6,
        documents_new=4,
        documents_known=2,
        rejects=1,
        rejects_new=1,
        rejects_by_reason={"empty": 1},
    )
    run = add_up([_shard(10, 1000, 256), _skipped(), _shard(5, 400, 999)]).replace(ingest=ingest)
    # The JSON a run of three shards, the second skipped whole, wrote before the results were typed.
    assert run.counts() == {
        "files": 3,
        "files_unchanged": 1,
        "documents": 6,
        "documents_new": 4,
        "documents_known": 2,
        "rejects": 1,
        "rejects_new": 1,
        "rejects_by_reason": {"empty": 1},
        "shards": 3,
        "shards_cached": 1,
        "classifier_documents_segmented": 4,
        "classifier_segments_new": 15,
        "classifier_max_tokens": 256,  # a setting: the first shard's, not a sum
        "classifier_overlap_tokens": 32,
        "segment_shards_skipped": 1,
        "segments_classified": 15,
        "classify_tokens": 1400,
        "classify_truncated_tokens": 0,
        "classify_shards_skipped": 1,
        "document_results_new": 4,
        "summaries_merged": 0,
        "document_summaries_unclean": 0,
        "aggregate_shards_skipped": 1,
    }
    assert list(run.counts())[:3] == ["files", "files_unchanged", "documents"]  # stage order, field order
    assert run.stage_seconds() == {"ingest": 0.1, "shard": 0.0, "segment": 0.51, "classify": 3.01, "aggregate": 1.01}
    assert run.model_tokens == 1400


def test_a_run_skipped_whole_reports_no_counts_it_did_not_make() -> None:
    run = add_up([_skipped(), _skipped()])
    assert run.counts() == {
        "shards": 2,
        "shards_cached": 2,
        "segment_shards_skipped": 2,
        "classify_shards_skipped": 2,
        "aggregate_shards_skipped": 2,
    }
    assert run.model_tokens == 0


def test_model_tokens_count_what_the_summarizer_read_and_wrote() -> None:
    summarize = SummarizeResult(summarize_input_tokens=300, summarize_output_tokens=40, summarize_truncated_tokens=7)
    run = RunResults(classify=ClassifyResult(classify_tokens=100), summarize=summarize)
    assert run.model_tokens == 440
    assert add_up([]).counts() == {"shards": 0, "shards_cached": 0}  # no documents, no shards
