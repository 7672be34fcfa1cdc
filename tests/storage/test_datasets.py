"""The storage seam: part files are immutable, even when a retried task reuses a part name, and
a foreign or damaged file in a table's folder is skipped and named, never read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pytest

from storage.datasets import Store
from tests.conftest import document_row
from tests.helpers import plant_bad_parts


def test_a_part_name_used_twice_keeps_both_parts(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    first = store.write_part("documents", [document_row("a", "alpha")], "run1-ingest")
    second = store.write_part("documents", [document_row("b", "beta")], "run1-ingest")  # a retry
    assert first and second and first != second
    assert sorted(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()) == ["a", "b"]
    assert not list((tmp_path / "data" / "documents").glob(".*.tmp"))


def test_parts_that_do_not_match_the_table_are_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [document_row("a", "alpha"), document_row("b", "beta")], "run1-ingest")
    planted = plant_bad_parts(tmp_path / "data" / "documents")
    documents = tmp_path / "data" / "documents"
    pq.write_table(pa.table({"doc_id": [None, "z"], "source_uri": ["u", "v"]}), documents / "null-key.parquet")
    pq.write_table(pa.table({"doc_id": ["z"], "source_uri": [7]}), documents / "wrong-type.parquet")
    pq.write_table(pa.table({"source_uri": ["u"], "doc_id": ["z"], "text": ["t"]}), documents / "gap.parquet")
    planted |= {"null-key.parquet": "has 1 NULLs", "wrong-type.parquet": "int64, not string", "gap.parquet": "format"}

    with caplog.at_level(logging.WARNING, logger="longdoc.storage"):
        assert sorted(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()) == ["a", "b"]
        batches = list(store.iter_batches("documents", ["doc_id"]))
        usable, skipped = store.usable_parts("documents")
    assert sum(b.num_rows for b in batches) == 2 and len(usable) == 1
    assert {Path(s.path).name: s.reason for s in skipped}.keys() == planted.keys()
    for part in skipped:
        assert planted[Path(part.path).name] in part.reason, part
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(planted)  # once per file, not once per read
    assert all(any(name in w for w in warned) for name in planted)


def test_a_part_from_before_a_column_was_appended_reads_with_nulls(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from storage.schema import REJECTS

    store = Store(str(tmp_path / "data"))
    old = REJECTS.remove(REJECTS.get_field_index("fingerprint"))  # `rejects` before `fingerprint`
    row = {"source_uri": "file:///x", "run_id": "r", "reason": "binary", "error": "e", "rejected_at": None}
    (tmp_path / "data" / "rejects").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row], schema=old), tmp_path / "data" / "rejects" / "old.parquet")
    assert store.read("rejects").to_pylist() == [row | {"fingerprint": None}]


def test_a_verdict_is_kept_until_the_file_changes(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [document_row("a", "alpha")], "run1-ingest")
    late = tmp_path / "data" / "documents" / "late.parquet"
    late.write_bytes(b"half written")
    assert len(store.usable_parts("documents")[1]) == 1
    good = Store(str(tmp_path / "other")).write_part("documents", [document_row("b", "beta")], "p")
    assert good
    os.replace(good, late)  # a different size and mtime: checked again
    assert len(store.usable_parts("documents")[0]) == 2
    assert sorted(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()) == ["a", "b"]


def test_store_resolves_its_filesystem_once_and_pickles_without_it(tmp_path):
    import pickle

    store = Store(str(tmp_path))
    assert store.fs_and_base is store.fs_and_base  # resolved once, not on every access
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and "fs_and_base" not in copy.__dict__
    assert copy.fs_and_base[1] == store.fs_and_base[1]
