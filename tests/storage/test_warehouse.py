"""The lake's tables: keys stored once, read-only queries with one-line errors, a reader that
keeps its snapshot while a writer commits, a lake made before a column was added, and the
typed reads (filters bound, never spliced into SQL)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import warehouse
from storage.datasets import Store
from storage.lake import LAKE, LakeRef, connect
from storage.warehouse import WarehouseError
from tests.conftest import document_row as _doc


def test_a_key_is_stored_once_across_commits_and_within_one(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    assert store.add("documents", [_doc("a", "alpha"), _doc("b", "beta"), _doc("b", "beta")]) == 2
    assert store.add("documents", [_doc("b", "beta"), _doc("c", "gamma")]) == 1  # b is there
    assert store.add("documents", [_doc("c", "gamma")]) == 0
    _, rows = warehouse.query(store, "SELECT doc_id, text FROM documents ORDER BY doc_id")
    assert rows == [("a", "alpha"), ("b", "beta"), ("c", "gamma")]


def test_runs_rows_are_replaced_not_duplicated(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.add("runs", [{"run_id": "r", "status": "running"}])
    store.add("runs", [{"run_id": "r", "status": "completed"}])
    assert store.read("runs", ["run_id", "status"]).to_pylist() == [{"run_id": "r", "status": "completed"}]


def test_typed_reads_bind_their_filters(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.add("documents", [_doc(f"d{i}", f"text {i}") for i in range(30)])
    hostile = "x' OR '1'='1"
    assert store.read("documents", ["doc_id"], {"doc_id": hostile}).num_rows == 0
    assert store.read("documents", ["doc_id"], {"doc_id": [hostile, "d3", "d7"]}).column(0).to_pylist() in (
        ["d3", "d7"],
        ["d7", "d3"],
    )
    assert store.read("documents", ["doc_id"], {"doc_id": []}).num_rows == 0
    with pytest.raises(ValueError, match="no column"):
        store.read("documents", ["doc_id"], {"doc_id = doc_id OR 1": "x"})
    batches = list(store.iter_batches("documents", ["doc_id", "text"], {"format": "txt"}, batch_size=7))
    assert sum(b.num_rows for b in batches) == 30 and max(b.num_rows for b in batches) == 7


def test_queries_are_read_only_and_errors_are_one_line(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.add("documents", [_doc("a", "alpha")])
    for sql in ("DELETE FROM documents", "SELEC nonsense", "SELECT nope FROM documents"):
        with pytest.raises(WarehouseError) as err:
            warehouse.query(store, sql)
        assert "\n" not in str(err.value)
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(1,)]


def test_a_reader_keeps_its_snapshot_while_a_writer_commits(tmp_path: Path) -> None:
    from storage import lakeio

    store = Store(str(tmp_path / "data"), "sqlite:" + str(tmp_path / "catalog.sqlite"))
    store.add("documents", [_doc("a", "alpha")])
    seen = lakeio.current_snapshot(store.lake)
    store.add("documents", [_doc("b", "beta")])
    assert lakeio.read(store.lake, "documents", ["doc_id"], snapshot=seen).num_rows == 1
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(2,)]


def test_missing_lake_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no data directory at"):
        warehouse.query(Store(str(tmp_path / "nothing")), "SELECT 1")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(WarehouseError, match="run `longdoc run` first"):
        warehouse.query(Store(str(tmp_path / "nothing")), "SELECT 1")


def test_a_lake_made_before_a_column_was_added_gets_it(tmp_path: Path) -> None:
    ref = LakeRef(str(tmp_path / "data"))
    with connect(ref) as con:  # `rejects` as it was before `fingerprint`
        con.execute(
            f"CREATE TABLE {LAKE}.rejects (source_uri VARCHAR, run_id VARCHAR, reason VARCHAR, error VARCHAR,"
            " rejected_at TIMESTAMPTZ)"
        )
        con.execute(f"INSERT INTO {LAKE}.rejects VALUES ('file:///old', 'r0', 'binary', 'e', now())")
    store = Store(str(tmp_path / "data"))
    row = {"source_uri": "file:///x", "run_id": "r", "reason": "binary", "error": "e", "fingerprint": "f"}
    assert store.add("rejects", [row | {"rejected_at": datetime.now(UTC)}]) == 1
    _, rows = warehouse.query(store, "SELECT source_uri, fingerprint FROM rejects ORDER BY 1")
    assert rows == [("file:///old", None), ("file:///x", "f")]


def test_store_pickles_its_names_only(tmp_path: Path) -> None:
    store = Store(str(tmp_path), "postgres:dbname=x")
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and "fs_and_base" not in copy.__dict__
