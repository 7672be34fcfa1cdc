"""The storage seam: part files are immutable, even when a retried task reuses a part name."""

from __future__ import annotations

from pathlib import Path

from storage.datasets import Store
from tests.conftest import document_row


def test_a_part_name_used_twice_keeps_both_parts(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    first = store.write_part("documents", [document_row("a", "alpha")], "run1-ingest")
    second = store.write_part("documents", [document_row("b", "beta")], "run1-ingest")  # a retry
    assert first and second and first != second
    assert sorted(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()) == ["a", "b"]
    assert not list((tmp_path / "data" / "documents").glob(".*.tmp"))
