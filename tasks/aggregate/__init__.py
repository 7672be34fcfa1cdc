"""Aggregate stage: reads `segments`, `segment_labels`, `segment_summaries` (and `documents` for
the merge); returns the `document_results` rows (label pooling in `aggregate`, the extractive
merge of summaries in `merge`)."""

from tasks.aggregate.aggregate import doc_labels, doc_languages, doc_segment_summaries, result_rows
from tasks.aggregate.merge import merge_extractive

__all__ = ["doc_labels", "doc_languages", "doc_segment_summaries", "merge_extractive", "result_rows"]
