"""A DuckDB catalog file is never written in place, and a writer killed at any step of folding
its log in leaves a lake that opens with every commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage import catalog_file
from storage.lake import LakeRef, connect

ROOT = Path(__file__).resolve().parents[2]


def _rows(ref: LakeRef) -> int:
    with connect(ref, read_only=True) as con:
        return con.execute("SELECT count(*) FROM lake.t").fetchone()[0]


def test_commits_never_rewrite_the_live_catalog_file(tmp_path: Path) -> None:
    ref = LakeRef(str(tmp_path))
    path = ref.catalog_path
    assert path is not None
    with connect(ref) as con:
        con.execute("CREATE TABLE lake.t (a INTEGER, b VARCHAR)")
    files = set()
    for i in range(120):
        fd = os.open(path, os.O_RDONLY)  # the file as it is now, followed through a rename
        try:
            before = os.pread(fd, 1 << 24, 0)
            with connect(ref) as con:
                con.execute("INSERT INTO lake.t SELECT range, ? FROM range(20)", [f"commit {i}"])
            assert os.pread(fd, 1 << 24, 0) == before, f"commit {i} wrote into the live catalog file"
        finally:
            os.close(fd)
        files.add(path.stat().st_ino)
    assert len(files) > 2, "the log was never folded in"  # so the swaps were exercised
    assert _rows(ref) == 120 * 20
    wal = path.with_name(path.name + ".wal")
    assert not wal.exists() or wal.stat().st_size <= catalog_file.wal_limit(path) + 64 * 1024


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from storage import catalog_file
    from storage.lake import LakeRef, connect

    step, seen = int(sys.argv[2]), [0]

    def killing(real):
        def wrapped(path):
            seen[0] += 1
            if seen[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path)
        return wrapped

    catalog_file.wal_limit = lambda path: 0  # this commit folds the log in
    catalog_file._fsync = killing(catalog_file._fsync)
    catalog_file._unlink = killing(catalog_file._unlink)
    with connect(LakeRef(sys.argv[1])) as con:
        con.execute("INSERT INTO lake.t SELECT range, 'last' FROM range(7)")
    print("not killed")
    """
)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_a_writer_killed_while_folding_its_log_in_loses_nothing(
    tmp_path: Path, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_file, "wal_limit", lambda path: 1 << 30)  # no fold-in here
    ref = LakeRef(str(tmp_path))
    path = ref.catalog_path
    assert path is not None
    with connect(ref) as con:
        con.execute("CREATE TABLE lake.t (a INTEGER, b VARCHAR)")
    catalog_file.checkpoint_if_due(path, limit=0)
    commits = 5
    for _ in range(commits):  # commits in the log only, which the child's fold-in must keep
        with connect(ref) as con:
            con.execute("INSERT INTO lake.t SELECT range, 'early' FROM range(3)")
    assert path.with_name(path.name + ".wal").exists()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(step)], env=env, capture_output=True, text=True, timeout=120
    )
    killed = child.returncode == -signal.SIGKILL
    assert killed or "not killed" in child.stdout, child.stderr
    if step <= 5:
        assert killed, f"the fold-in has fewer steps than {step}"
    lake_files = {"catalog.ducklake", "catalog.ducklake.wal", "catalog.ducklake.lock", "main"}
    leftovers = {p.name for p in tmp_path.iterdir()} - lake_files
    assert _rows(ref) == commits * 3 + 7  # the child's commit was in the log before the fold-in began
    with connect(ref) as con:  # and the lake takes writes again
        con.execute("INSERT INTO lake.t VALUES (1, 'after')")
    assert _rows(ref) == commits * 3 + 8
    assert {p.name for p in tmp_path.iterdir()} <= lake_files
    assert step > 5 or leftovers, "the kill left no trace of a fold-in to recover from"


def test_a_fold_in_that_fails_keeps_the_commit_and_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ref = LakeRef(str(tmp_path))
    path = ref.catalog_path
    assert path is not None
    with connect(ref) as con:
        con.execute("CREATE TABLE lake.t (a INTEGER, b VARCHAR)")
    real = catalog_file.checkpoint_if_due

    def full_disk(path: Path, limit: int | None = None) -> bool:
        (path.parent / "catalog.ducklake.next.tmp").write_bytes(b"half a copy")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog_file, "checkpoint_if_due", full_disk)
    with caplog.at_level("WARNING", logger="longdoc.storage"), connect(ref) as con:
        con.execute("INSERT INTO lake.t SELECT range, 'kept' FROM range(4)")
    assert "not folded in" in caplog.text and "No space left" in caplog.text
    monkeypatch.setattr(catalog_file, "checkpoint_if_due", real)
    assert _rows(ref) == 4  # the commit stands, and the half copy is cleared on the next open
    assert not (tmp_path / "catalog.ducklake.next.tmp").exists()
    with connect(ref) as con:
        con.execute("INSERT INTO lake.t VALUES (1, 'after')")
    assert _rows(ref) == 5
