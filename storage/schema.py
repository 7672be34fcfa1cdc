"""Arrow schemas of every dataset longdoc writes, and the keys each table is upserted on.

JSON-valued columns (metadata, scores, parameters, counts) are stored as JSON text so any
Parquet reader can open them; the warehouse types them as DuckDB JSON.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

DOCUMENTS = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source_uri", pa.string()),
        ("format", pa.string()),
        ("title", pa.string()),
        ("text", pa.large_string()),
        ("n_chars", pa.int64()),
        ("content_sha256", pa.string()),
        ("ingested_at", TS),
        ("metadata", pa.string()),
    ]
)

SEGMENTS = pa.schema(
    [
        ("segment_id", pa.string()),
        ("doc_id", pa.string()),
        ("segmenter", pa.string()),
        ("tokenizer", pa.string()),
        ("max_tokens", pa.int32()),
        ("seq", pa.int32()),
        ("char_start", pa.int64()),
        ("char_end", pa.int64()),
        ("n_tokens", pa.int32()),
        ("input_tokens", pa.int32()),
        ("overlap_tokens", pa.int32()),
        ("text", pa.large_string()),
    ]
)

SEGMENT_LABELS = pa.schema(
    [
        ("segment_id", pa.string()),
        ("model", pa.string()),
        ("doc_id", pa.string()),
        ("label", pa.string()),
        ("score", pa.float64()),
        ("scores", pa.string()),
        ("n_input_tokens", pa.int32()),
        ("truncated_tokens", pa.int32()),
        # Which model labelled the segment: the classifier itself (`model` without its fallback
        # part) or its fallback decoder; the [UNK] share that decided; a decoder prompt's language.
        ("labelled_by", pa.string()),
        ("unk_share", pa.float64()),
        ("language", pa.string()),
    ]
)

SEGMENT_SUMMARIES = pa.schema(
    [
        ("segment_id", pa.string()),
        ("model", pa.string()),
        ("doc_id", pa.string()),
        ("summary", pa.large_string()),
        ("n_input_tokens", pa.int32()),
        ("n_output_tokens", pa.int32()),
        ("truncated_tokens", pa.int32()),
        ("hit_max_new_tokens", pa.bool_()),
        ("language", pa.string()),  # of the segment's text, by script: the prompt's language
        # The model's output as generated; `summary` holds its sentences that passed the checks
        # (tasks/summarize/sentence_filter.py), and the counts say what happened to the others.
        ("raw_summary", pa.large_string()),
        ("sentences_kept", pa.int32()),
        ("sentences_removed_meta", pa.int32()),
        ("sentences_removed_continuation", pa.int32()),
        ("sentences_removed_unsupported", pa.int32()),
        ("sentences_rewritten_meta", pa.int32()),
    ]
)

# Where each sentence of a stored segment summary comes from: the span of the document that
# supports it best (offsets into documents.text, inside its segment) and how well (tasks/evidence.py).
SUMMARY_EVIDENCE = pa.schema(
    [
        ("segment_id", pa.string()),
        ("model", pa.string()),
        ("sentence_no", pa.int32()),
        ("doc_id", pa.string()),
        ("sentence", pa.string()),
        ("char_start", pa.int64()),
        ("char_end", pa.int64()),
        ("support", pa.float64()),
    ]
)

DOCUMENT_RESULTS = pa.schema(
    [
        ("doc_id", pa.string()),
        ("config_id", pa.string()),
        ("label", pa.string()),
        ("label_score", pa.float64()),
        ("label_scores", pa.string()),
        ("label_max_scores", pa.string()),
        ("summary", pa.large_string()),
        ("summary_depth", pa.int32()),
        ("n_segments", pa.int32()),
        ("n_summary_segments", pa.int32()),
        ("classifier", pa.string()),
        ("labelled_by", pa.string()),  # JSON: the model that labelled each segment -> how many segments
        ("summarizer", pa.string()),
        ("run_id", pa.string()),
        ("created_at", TS),
    ]
)

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("flow_run_id", pa.string()),
        ("config_id", pa.string()),
        ("started_at", TS),
        ("finished_at", TS),
        ("status", pa.string()),
        ("parameters", pa.string()),
        ("counts", pa.string()),
        ("stage_seconds", pa.string()),
        ("seconds", pa.float64()),
        ("tokens_per_s", pa.float64()),
        ("error", pa.string()),
    ]
)

REJECTS = pa.schema(
    [
        ("source_uri", pa.string()),
        ("run_id", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("rejected_at", TS),
        # The input's version: its content's sha256 when it was read, else its size and mtime.
        ("fingerprint", pa.string()),
    ]
)

# What ingest saw of each input file, so an unchanged file is skipped without being read.
INBOX_FILES = pa.schema(
    [
        ("source_uri", pa.string()),
        ("run_id", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("content_sha256", pa.string()),
        ("settings", pa.string()),
        ("doc_ids", pa.string()),
        ("reason", pa.string()),
        ("seen_at", TS),
    ]
)

# With --redact: per document and type, how many values were replaced and where each placeholder
# lies in the stored text (`spans`: JSON [[char_start, char_end], ...]); never a value itself.
# `values`: distinct values of the type in the whole document; `elsewhere`: replacements outside
# the text (title, metadata, source_uri).
REDACTIONS = pa.schema(
    [
        ("doc_id", pa.string()),
        ("type", pa.string()),
        ("count", pa.int32()),
        ("values", pa.int32()),
        ("elsewhere", pa.int32()),
        ("spans", pa.large_string()),
        ("run_id", pa.string()),
        ("redacted_at", TS),
    ]
)

# One row per metric of an evaluation: `system` is "document" (the run's document results) or
# "first_segment" (the truncation baseline); `subset` is "all" or "multi_segment".
EVALUATIONS = pa.schema(
    [
        ("run_id", pa.string()),
        ("metric", pa.string()),
        ("system", pa.string()),
        ("subset", pa.string()),
        ("value", pa.float64()),
        ("n_documents", pa.int32()),
        ("config_id", pa.string()),
        ("data", pa.string()),
        ("created_at", TS),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "documents": DOCUMENTS,
    "segments": SEGMENTS,
    "segment_labels": SEGMENT_LABELS,
    "segment_summaries": SEGMENT_SUMMARIES,
    "summary_evidence": SUMMARY_EVIDENCE,
    "document_results": DOCUMENT_RESULTS,
    "runs": RUNS,
    "rejects": REJECTS,
    "inbox_files": INBOX_FILES,
    "evaluations": EVALUATIONS,
    "redactions": REDACTIONS,
}

# The key of each table: a row whose key is already stored is never written again
# (runs are the exception: a run's row is replaced as the run moves to its final status).
KEYS: dict[str, tuple[str, ...]] = {
    "documents": ("doc_id",),
    "segments": ("segment_id",),
    "segment_labels": ("segment_id", "model"),
    "segment_summaries": ("segment_id", "model"),
    "summary_evidence": ("segment_id", "model", "sentence_no"),
    "document_results": ("doc_id", "config_id"),
    "runs": ("run_id",),
    "rejects": ("source_uri", "run_id"),
    "inbox_files": ("source_uri", "run_id"),
    "evaluations": ("run_id", "metric", "system", "subset"),
    "redactions": ("doc_id", "type"),
}

JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "documents": ("metadata",),
    "inbox_files": ("doc_ids",),
    "segment_labels": ("scores",),
    "document_results": ("label_scores", "label_max_scores", "labelled_by"),
    "runs": ("parameters", "counts", "stage_seconds"),
    "redactions": ("spans",),
}
