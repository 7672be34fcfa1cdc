"""Segment: the stage that cuts every document into segments for one model and stores them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from storage.datasets import Store
from tasks.segment.segmenter import Segmenter, Span
from tasks.tables import load_texts

SEGMENT_BATCH_DOCUMENTS = 64  # tokenized together, in parallel


def segment_id_for(doc_id: str, segmenter_id: str, seq: int) -> str:
    return hashlib.sha256(f"{doc_id}|{segmenter_id}|{seq}".encode()).hexdigest()[:20]


def segment_rows(doc_id: str, text: str, segmenter: Segmenter, spans: list[Span]) -> Iterator[dict[str, Any]]:
    for span in spans:
        yield {
            "segment_id": segment_id_for(doc_id, segmenter.segmenter_id, span.seq),
            "doc_id": doc_id,
            "segmenter": segmenter.segmenter_id,
            "tokenizer": segmenter.tokenizer_name,
            "max_tokens": segmenter.max_tokens,
            "seq": span.seq,
            "char_start": span.char_start,
            "char_end": span.char_end,
            "n_tokens": span.n_tokens,
            "input_tokens": span.input_tokens,
            "overlap_tokens": span.overlap_tokens,
            "text": text[span.char_start : span.char_end],
        }


def release_arrow_memory() -> None:
    """Give the memory Arrow's allocator keeps after a read back to the system: reading one 50 MB
    document leaves ~170 MB in its pool, which the segmenter's numpy arrays cannot reuse."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def segment_documents(store: Store, doc_ids: list[str], segmenter: Segmenter, part: str) -> dict[str, int]:
    """Segment the documents not yet segmented this way; returns counts."""
    # These documents only: a shard's read must not grow with the lake.
    where = {"segmenter": segmenter.segmenter_id, "doc_id": doc_ids}
    done = store.read("segments", columns=["doc_id"], where=where).column("doc_id")
    todo = sorted(set(doc_ids) - set(done.to_pylist()))
    rows: list[dict[str, Any]] = []
    for batch in range(0, len(todo), SEGMENT_BATCH_DOCUMENTS):
        texts = load_texts(store, todo[batch : batch + SEGMENT_BATCH_DOCUMENTS])
        release_arrow_memory()  # what reading the texts took is not held while they are segmented
        for (doc_id, text), spans in zip(texts.items(), segmenter.split_many(list(texts.values())), strict=True):
            rows.extend(segment_rows(doc_id, text, segmenter, spans))
    store.add("segments", rows)
    return {"documents_segmented": len(todo), "segments_new": len(rows)}
