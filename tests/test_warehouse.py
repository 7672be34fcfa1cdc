"""The DuckDB warehouse: idempotent loads, read-only queries, rebuild from Parquet alone."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from storage import warehouse
from storage.datasets import Store
from storage.warehouse import WarehouseError
from tests.conftest import document_row as _doc


def test_sync_is_idempotent_and_rebuild_reproduces_tables(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha"), _doc("b", "beta")], "run1-ingest")
    assert warehouse.sync(store) == {"documents": 2}
    store.write_part("documents", [_doc("b", "beta"), _doc("c", "gamma")], "run2-ingest")
    assert warehouse.sync(store) == {"documents": 1}  # b is already there
    assert warehouse.sync(store) == {}
    _, rows = warehouse.query(store, "SELECT doc_id, text FROM documents ORDER BY doc_id")
    assert rows == [("a", "alpha"), ("b", "beta"), ("c", "gamma")]
    warehouse.warehouse_path(store).unlink()
    warehouse.sync(store, rebuild=True)
    assert warehouse.query(store, "SELECT doc_id, text FROM documents ORDER BY doc_id")[1] == rows


def test_queries_are_read_only_and_errors_are_one_line(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha")], "run1-ingest")
    warehouse.sync(store)
    with pytest.raises(WarehouseError) as err:
        warehouse.query(store, "DELETE FROM documents")
    assert "\n" not in str(err.value)
    with pytest.raises(WarehouseError):
        warehouse.query(store, "SELEC nonsense")
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(1,)]


def test_a_reader_keeps_its_snapshot_while_a_writer_syncs(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha")], "run1-ingest")
    warehouse.sync(store)
    reader = duckdb.connect(str(warehouse.warehouse_path(store)), read_only=True)
    store.write_part("documents", [_doc("b", "beta")], "run2-ingest")
    warehouse.sync(store)  # replaces the file; the open reader is not disturbed
    assert reader.execute("SELECT count(*) FROM documents").fetchone() == (1,)
    reader.close()
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(2,)]


def test_missing_warehouse_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="longdoc rebuild"):
        warehouse.query(Store(str(tmp_path / "nothing")), "SELECT 1")


def test_a_warehouse_made_before_a_column_was_added_gets_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = Store(str(tmp_path / "data"))
    path = warehouse.warehouse_path(store)
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))  # `rejects` as it was before `fingerprint`
    con.execute(
        "CREATE TABLE rejects (source_uri VARCHAR, run_id VARCHAR, reason VARCHAR, error VARCHAR,"
        " rejected_at TIMESTAMPTZ, PRIMARY KEY (source_uri, run_id))"
    )
    con.close()
    row = {"source_uri": "file:///x", "run_id": "r", "reason": "binary", "error": "e", "fingerprint": "f"}
    store.write_part("rejects", [row | {"rejected_at": datetime.now(UTC)}], "r-ingest")
    assert warehouse.sync(store)["rejects"] == 1
    assert warehouse.query(store, "SELECT reason, fingerprint FROM rejects")[1] == [("binary", "f")]
