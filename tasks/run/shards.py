"""Shards: the unit of work the orchestrator tracks, a few hundred long documents each.

Shards are deterministic (documents sorted by id, cut by count and by characters), so a re-run
over the same documents sees the same shards and can skip those already finished. One task per
stage per shard keeps the orchestrator at thousands of task runs, not millions.

Characters bound a shard's work (200 documents of 10k tokens fill one); the document count
only bounds the rows of small documents. Every shard stage costs a task run and a few lake
transactions (~0.5 s on a loaded machine) and each commit adds files to the lake, so small
documents go many to a shard: 2,000 documents of 2.3 KB are one shard, not ten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from storage.datasets import Store

DEFAULT_SHARD_DOCUMENTS = 2000
DEFAULT_SHARD_CHARS = 8_000_000  # about 2M tokens: minutes of GPU work, not hours


@dataclass(frozen=True)
class Shard:
    index: int
    doc_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        """Names the shard's content: the same documents give the same key."""
        return hashlib.sha256("\n".join(self.doc_ids).encode()).hexdigest()[:16]


def make_shards(
    store: Store,
    doc_ids: list[str],
    max_documents: int = DEFAULT_SHARD_DOCUMENTS,
    max_chars: int = DEFAULT_SHARD_CHARS,
) -> list[Shard]:
    """Documents sorted by id, cut whenever a shard would pass `max_documents` or `max_chars`."""
    ordered = sorted(set(doc_ids))
    if not ordered:
        return []
    sizes_table = store.read("documents", columns=["doc_id", "n_chars"], where={"doc_id": ordered})
    sizes = dict(zip(sizes_table.column("doc_id").to_pylist(), sizes_table.column("n_chars").to_pylist(), strict=True))
    shards: list[Shard] = []
    current: list[str] = []
    chars = 0
    for doc_id in ordered:
        size = sizes.get(doc_id, 0)
        if current and (len(current) >= max_documents or chars + size > max_chars):
            shards.append(Shard(len(shards), tuple(current)))
            current, chars = [], 0
        current.append(doc_id)
        chars += size
    shards.append(Shard(len(shards), tuple(current)))
    return shards
