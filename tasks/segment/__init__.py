"""Segment stage: reads `documents`; writes `segments` (token-aware, overlapping, exact char spans).

`segmenter` cuts one text (with `boundaries` and `word_units`); `segment` is the stage over the tables.
"""

from tasks.segment.segment import segment_documents
from tasks.segment.segmenter import Segmenter

__all__ = ["Segmenter", "segment_documents"]
