"""The DuckDB warehouse: idempotent loads, read-only queries, rebuild from Parquet alone, and
loads that go past foreign or damaged part files and a damaged warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from storage import warehouse
from storage.datasets import Store
from storage.warehouse import WarehouseError
from tasks.run.results import RunResults
from tasks.run.steps import step_record_run
from tests.conftest import document_row as _doc
from tests.helpers import plant_bad_parts


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
    with pytest.raises(WarehouseError, match="no data directory at"):
        warehouse.query(Store(str(tmp_path / "nothing")), "SELECT 1")
    (tmp_path / "nothing").mkdir()
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


def _with_bad_parts(tmp_path: Path) -> tuple[Store, list[str]]:
    """Good rows in `documents` and `segments`, and beside them files that are not theirs."""
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha"), _doc("b", "beta")], "run1-ingest")
    segment = {"segment_id": "s1", "doc_id": "a", "seq": 0, "char_start": 0, "char_end": 5, "text": "alpha"}
    store.write_part("segments", [segment], "run1-segment")
    planted = []
    for table in ("documents", "segments"):
        planted += [f"{table}/{name}" for name in plant_bad_parts(tmp_path / "data" / table)]
    return store, planted


def test_a_load_skips_foreign_parts_names_and_counts_them(tmp_path: Path) -> None:
    store, planted = _with_bad_parts(tmp_path)
    assert sorted(p.path.split("/data/")[1] for p in warehouse.skipped_parts(store)) == sorted(planted)
    assert warehouse.sync(store) == {"documents": 2, "segments": 1}
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(2,)]
    assert len(warehouse.skipped_parts(store)) == len(planted)  # never loaded, so skipped again
    started = datetime.now(UTC)
    record = step_record_run(store, "r1", None, "cfg", started, {}, RunResults(), "completed")
    assert record.counts["parts_skipped"] == len(planted)
    _, rows = warehouse.query(store, "SELECT counts->>'$.parts_skipped' FROM runs")
    assert rows == [(str(len(planted)),)]


def test_rebuild_goes_past_foreign_parts_and_names_them(tmp_path: Path) -> None:
    store, planted = _with_bad_parts(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "rebuild", "--data-dir", store.root],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "documents 2, segments 1" in done.stdout and f"skipped {len(planted)} part files" in done.stdout
    assert all(str(tmp_path / "data" / name) in done.stderr for name in planted), done.stderr
    assert warehouse.query(store, "SELECT count(*) FROM segments")[1] == [(1,)]


def test_a_damaged_warehouse_is_made_again_by_the_next_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha")], "run1-ingest")
    warehouse.sync(store)
    warehouse.warehouse_path(store).write_bytes(os.urandom(4096))
    with pytest.raises(WarehouseError, match="longdoc rebuild"):
        warehouse.query(store, "SELECT 1")
    store.write_part("documents", [_doc("b", "beta")], "run2-ingest")
    assert warehouse.sync(store) == {"documents": 2}
    assert "is damaged" in caplog.text
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(2,)]


def test_a_part_with_a_sound_footer_and_damaged_data_is_skipped(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    store.write_part("documents", [_doc("a", "alpha")], "run1-ingest")
    rows = [_doc(f"x{i}", os.urandom(64).hex()) for i in range(50)]
    damaged = Path(str(store.write_part("documents", rows, "run2-ingest")))
    body = bytearray(damaged.read_bytes())
    body[8:400] = os.urandom(392)  # the first data pages; the footer at the end stays whole
    damaged.write_bytes(bytes(body))
    assert store.usable_parts("documents")[1] == []  # the footer check cannot see it
    assert warehouse.sync(store) == {"documents": 1}
    assert warehouse.query(store, "SELECT doc_id FROM documents")[1] == [("a",)]
