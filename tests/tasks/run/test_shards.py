"""Shards: deterministic, bounded by documents and characters, every document once."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.datasets import Store
from tasks.run.shards import make_shards
from tests.conftest import document_row


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=0, max_size=40),
    max_documents=st.integers(1, 7),
    max_chars=st.integers(1, 120),
)
def test_shards_cover_every_document_once_within_bounds(
    tmp_path_factory, sizes: list[int], max_documents: int, max_chars: int
) -> None:
    store = Store(str(tmp_path_factory.mktemp("store")))
    rows = [document_row(f"d{n:03d}", "x" * size) for n, size in enumerate(sizes)]
    store.add("documents", rows)
    ids = [r["doc_id"] for r in rows]
    n_chars = {r["doc_id"]: r["n_chars"] for r in rows}
    shards = make_shards(store, list(reversed(ids)), max_documents, max_chars)
    assert sorted(d for s in shards for d in s.doc_ids) == sorted(ids)
    assert [s.index for s in shards] == list(range(len(shards)))
    for shard in shards:
        assert 1 <= len(shard.doc_ids) <= max_documents
        # a shard passes the character bound only when one document alone does
        assert sum(n_chars[d] for d in shard.doc_ids) <= max_chars or len(shard.doc_ids) == 1
    assert make_shards(store, ids, max_documents, max_chars) == shards  # input order does not matter


def test_shard_key_names_the_content(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    rows = [document_row(f"d{n}", f"text {n}") for n in range(5)]
    store.add("documents", rows)
    ids = [r["doc_id"] for r in rows]
    first = make_shards(store, ids, 2)
    assert [s.key for s in make_shards(store, ids, 2)] == [s.key for s in first]
    assert len({s.key for s in first}) == len(first) == 3
    fewer = make_shards(store, ids[:4], 2)  # the last document gone: only the last shard changes
    assert [s.key for s in fewer] == [s.key for s in first[:2]]
