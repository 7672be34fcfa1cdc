"""Reads several stages share, written once: stages meet only through the tables.

Below the stage packages: any stage may import this module; it imports only `storage`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from storage.datasets import Store


def load_texts(store: Store, doc_ids: list[str]) -> dict[str, str]:
    """The texts of the given documents."""
    table = store.read("documents", columns=["doc_id", "text"], where={"doc_id": doc_ids})
    return dict(zip(table.column("doc_id").to_pylist(), table.column("text").to_pylist(), strict=True))


def pending_segments(
    store: Store, segmenter_id: str, doc_ids: list[str], results_table: str, model_id: str, chunk_rows: int = 2048
) -> tuple[int, Iterator[list[dict[str, Any]]]]:
    """How many segments of these documents have no row in `results_table` for this model, and
    those segments (id, doc_id, char_start, text) in chunks, so memory stays flat however many there are."""
    where = {"segmenter": segmenter_id, "doc_id": doc_ids}
    done = store.read(results_table, columns=["segment_id"], where={"model": model_id, "doc_id": doc_ids})
    finished = set(done.column("segment_id").to_pylist())
    ids = store.read("segments", columns=["segment_id"], where=where).column("segment_id").to_pylist()
    todo = {i for i in ids if i not in finished}

    def chunks() -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        for batch in store.iter_batches("segments", ["segment_id", "doc_id", "char_start", "text"], where):
            chunk.extend(r for r in batch.to_pylist() if r["segment_id"] in todo)
            while len(chunk) >= chunk_rows:
                yield chunk[:chunk_rows]
                chunk = chunk[chunk_rows:]
        if chunk:
            yield chunk

    return len(todo), chunks()


def segment_results(
    store: Store, doc_ids: list[str], segmenter_id: str, table: str, model_id: str, columns: list[str]
) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Per document, in `seq` order: each segment (segment_id, doc_id, seq, n_tokens,
    overlap_tokens) that has a row in `table` for this model, with that row's `columns`."""
    segments = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq", "n_tokens", "overlap_tokens"],
        where={"segmenter": segmenter_id, "doc_id": doc_ids},
    ).to_pylist()
    rows = store.read(table, columns=["segment_id", *columns], where={"model": model_id, "doc_id": doc_ids}).to_pylist()
    result = {r["segment_id"]: r for r in rows}
    out: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for seg in sorted(segments, key=lambda s: (s["doc_id"], s["seq"])):
        if seg["segment_id"] in result:
            out.setdefault(seg["doc_id"], []).append((seg, result[seg["segment_id"]]))
    return out
