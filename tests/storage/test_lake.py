"""The lake: concurrent writers in real processes end with one row per key, a shard stage's rows
and its completion are committed together or not at all, readers see whole runs, `--as-of`
answers as the lake stood after a run, and the sandbox's connection reaches only the lake."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import runlog, warehouse
from storage.datasets import Store
from storage.lake import connect
from storage.lakeio import Completion
from storage.sandbox import QueryLimits
from storage.warehouse import WarehouseError
from tests.conftest import document_row

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "release-0bd420b"

# A writer process: commits documents start..start+n in batches of `batch`, each a transaction.
WRITER = """
import sys
from storage.datasets import Store
from storage.lake import connect
from tests.conftest import document_row
root, catalog, start, n, batch, tag = sys.argv[1], sys.argv[2] or None, *map(int, sys.argv[3:6]), sys.argv[6]
store = Store(root, catalog)
for first in range(start, start + n, batch):
    rows = [document_row(f"doc{i:05d}", f"text {i}") for i in range(first, min(first + batch, start + n))]
    store.add("documents", rows, tag)
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, stderr=subprocess.PIPE)


def _counts(store: Store) -> tuple[int, int]:
    ids = store.read("documents", ["doc_id"]).column("doc_id").to_pylist()
    return len(ids), len(set(ids))


def run_writers(root: str, catalog: str | None) -> Store:
    """Three processes at once, their documents overlapping (0-59, 30-89, 0-89): one row per key."""
    spans = [(0, 60, 7), (30, 60, 5), (0, 90, 11)]
    writers = [
        _python(WRITER, root, catalog or "", str(a), str(n), str(b), f"w{i}") for i, (a, n, b) in enumerate(spans)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err[-3000:]
    return Store(root, catalog)


def test_concurrent_writer_processes_store_each_key_once(tmp_path: Path) -> None:
    store = run_writers(str(tmp_path / "data"), None)
    assert _counts(store) == (90, 90)


def test_concurrent_writers_with_a_postgres_catalog(tmp_path: Path, postgres_catalog: str) -> None:
    store = run_writers(str(tmp_path / "data"), postgres_catalog)
    assert _counts(store) == (90, 90)


# A shard stage's commit cut short by the process dying after its rows and completion row were
# written in the transaction, before COMMIT (what a SIGKILL there leaves).
DIES_BEFORE_COMMIT = """
import os, sys
from storage import lakeio
from storage.datasets import Store
from storage.lake import connect
from tests.conftest import document_row
store = Store(sys.argv[1])
def die(con, run_id, extra):
    assert con.execute("SELECT count(*) FROM lake._completion").fetchone() == (1,)  # written, not committed
    os._exit(9)
lakeio._finish = die
store.commit({"documents": [document_row("x", "text x")]}, "r1", "stage", lakeio.Completion("segment", "cfg", "k"))
"""


def test_a_stage_killed_before_its_commit_left_neither_rows_nor_completion(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    store = Store(root)
    store.add("documents", [document_row("a", "text a")])
    process = _python(DIES_BEFORE_COMMIT, root)
    process.communicate(timeout=300)
    assert process.returncode == 9
    done = Completion("segment", "cfg", "k")
    assert not store.is_done(done)
    assert store.read("documents", ["doc_id"]).column("doc_id").to_pylist() == ["a"]
    # Run again, it commits both; a third writer of the same stage then adds nothing.
    store.commit({"documents": [document_row("x", "text x")]}, "r2", "stage", done)
    assert store.is_done(done) and _counts(store) == (2, 2)
    assert store.commit({"documents": [document_row("y", "text y")]}, "r3", "stage", done) == {}
    assert _counts(store) == (2, 2)


def _run_row(run_id: str, status: str) -> dict[str, object]:
    return {"run_id": run_id, "status": status, "started_at": datetime.now(UTC)}


def _ids(store: Store, as_of: str | None = None) -> list[str]:
    return [r[0] for r in warehouse.query(store, "SELECT doc_id FROM documents ORDER BY 1", as_of=as_of)[1]]


def test_readers_see_whole_runs_and_as_of_answers_as_after_a_run(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    runlog.begin(store.lake, _run_row("run1", "running"))
    store.add("documents", [document_row("a", "text a")], "run1")
    assert _ids(store) == []  # run1 in flight: nothing of it shows
    runlog.end(store.lake, _run_row("run1", "completed"))
    assert _ids(store) == ["a"]
    # Two runs overlapping: run2 ends first, but run3 began before run2's end; neither shows
    # until the reader can see both whole.
    runlog.begin(store.lake, _run_row("run2", "running"))
    store.add("documents", [document_row("b", "text b")], "run2")
    runlog.begin(store.lake, _run_row("run3", "running"))
    store.add("documents", [document_row("c", "text c")], "run3")
    runlog.end(store.lake, _run_row("run2", "completed"))
    assert _ids(store) == ["a"]
    runlog.end(store.lake, _run_row("run3", "completed"))
    assert _ids(store) == ["a", "b", "c"]
    assert _ids(store, as_of="run1") == ["a"]
    # As the lake stood when run2 ended: run3 had committed a shard by then, and it shows.
    assert _ids(store, as_of="run2") == ["a", "b", "c"]
    _, rows = warehouse.query(store, "SELECT run_id, status, snapshot_id FROM runs ORDER BY run_id")
    assert [r[:2] for r in rows] == [("run1", "completed"), ("run2", "completed"), ("run3", "completed")]
    assert rows[0][2] < rows[1][2] < rows[2][2]  # each run's final snapshot
    for unknown in ("nope", "run4"):
        with pytest.raises(WarehouseError, match=f"no run {unknown} in this lake"):
            warehouse.query(store, "SELECT 1", as_of=unknown)


def test_a_killed_run_is_closed_by_the_next_one_and_its_shards_show(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    code = (
        "import sys\nfrom datetime import UTC, datetime\nfrom storage import runlog\n"
        "from storage.datasets import Store\n"
        "from tests.conftest import document_row\nstore = Store(sys.argv[1])\n"
        "runlog.begin(store.lake, {'run_id': 'dead', 'status': 'running', 'started_at': datetime.now(UTC)})\n"
        "store.add('documents', [document_row('a', 'text a')], 'dead')\n"
    )
    process = _python(code, root)
    assert process.wait(timeout=300) == 0
    store = Store(root)
    assert _ids(store) == []  # in flight, as far as anyone can tell
    runlog.begin(store.lake, _run_row("next", "running"))  # its process is gone: closed
    _, rows = warehouse.query(store, "SELECT run_id, status, error FROM runs ORDER BY run_id")
    assert rows[0][:2] == ("dead", "failed") and "interrupted" in rows[0][2]
    assert _ids(store) == ["a"]
    with pytest.raises(WarehouseError, match="has not ended"):
        warehouse.query(store, "SELECT 1", as_of="next")


def test_the_sandbox_connection_reaches_only_the_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second fence alone, with the statement checks bypassed: the lake reads, nothing else
    does, and no setting can be changed."""
    import duckdb

    store = Store(str(tmp_path / "data"))
    store.add("documents", [document_row("a", "text a")] * 1 + [document_row(f"d{i}", "t") for i in range(50)])
    monkeypatch.chdir(tmp_path)
    with connect(store.lake, read_only=True) as lake:
        snapshot = runlog.visible_snapshot(lake)
    con = warehouse.sandboxed(store.lake, snapshot, QueryLimits())
    try:
        assert con.execute("SELECT count(*) FROM documents").fetchone() == (51,)
        for sql in (
            "SELECT * FROM read_csv('/etc/passwd')",
            "COPY (SELECT 1) TO 'out.csv'",
            "ATTACH 'other.duckdb'",
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "INSTALL httpfs",
            "INSERT INTO documents SELECT * FROM documents",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    finally:
        con.close()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_a_data_directory_of_the_previous_release_is_migrated_with_identical_results(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    (data / "warehouse.duckdb").write_bytes(gzip.decompress((FIXTURE / "warehouse.duckdb.gz").read_bytes()))
    parquet_bytes = sum(p.stat().st_size for p in data.rglob("*.parquet"))
    expected = json.loads((FIXTURE / "expected.json").read_text())
    store = Store(str(data))
    for name, case in expected.items():
        columns, rows = warehouse.query(store, case["sql"])
        got = json.loads(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
        assert got == case["rows"], name
    assert not (data / "warehouse.duckdb").exists() and not (data / "_completion").exists()
    assert not (data / "documents").exists()  # the old parts are gone: the data is not kept twice
    lake_files = sum(p.stat().st_size for p in (data / "main").rglob("*.parquet"))
    assert lake_files <= 1.5 * parquet_bytes
    # The completion markers came along: the same shard stages are done.
    marker_names = [p.name for p in (FIXTURE / "data" / "_completion").glob("*.json")]
    for name in marker_names:
        config_id, stage, shard = name.removesuffix(".json").split("-")
        assert store.is_done(Completion(stage, config_id, shard)), name
    assert warehouse.rebuild(store).migrated == {}  # once only


def _six_runs(tmp_path: Path) -> Store:
    """A lake of six runs r0..r5 of 40 documents each: a data file (or more) per run."""
    store = Store(str(tmp_path / "data"))
    for n in range(6):
        runlog.begin(store.lake, _run_row(f"r{n}", "running"))
        store.add("documents", [document_row(f"r{n}-{i}", f"text {n} {i}") for i in range(40)], f"r{n}")
        runlog.end(store.lake, _run_row(f"r{n}", "completed"))
    return store


def test_compact_keeps_query_results(tmp_path: Path) -> None:
    store = _six_runs(tmp_path)
    sql = "SELECT doc_id, text FROM documents ORDER BY doc_id"
    before = warehouse.query(store, sql)
    from datetime import timedelta

    done = warehouse.compact(store, timedelta(0))
    assert done["data_files_after"] < done["data_files_before"]
    assert warehouse.query(store, sql) == before
    assert warehouse.rebuild(store).missing_files == []


def test_a_lake_left_with_many_files_is_merged_and_still_travels_in_time(tmp_path: Path) -> None:
    store = _six_runs(tmp_path)
    sql = "SELECT doc_id, text FROM documents ORDER BY doc_id"
    before, at_r2 = warehouse.query(store, sql), _ids(store, as_of="r2")
    assert len(at_r2) == 120

    assert warehouse.merge_small_files(store, over=10_000) is None  # under the bound: nothing done
    merged = warehouse.merge_small_files(store, over=1)
    assert merged is not None and merged["data_files_after"] < merged["data_files_before"]
    assert warehouse.merge_small_files(store, over=merged["data_files_after"]) is None
    assert warehouse.query(store, sql) == before
    assert _ids(store, as_of="r2") == at_r2  # no snapshot expired: --as-of answers as before
    assert warehouse.rebuild(store).missing_files == []
