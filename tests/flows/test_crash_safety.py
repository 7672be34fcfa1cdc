"""Crash safety: real runs killed with SIGKILL at several points, then run again, end with exactly
the tables of one clean run: no duplicate and no missing row, read with the typed reads and
through the query sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from storage import warehouse
from storage.datasets import Store
from storage.schema import KEYS
from tests.sample_files import make_docx, make_pdf

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("documents", "segments", "segment_labels", "segment_summaries", "document_results", "rejects", "inbox_files")
VOLATILE = {"run_id", "ingested_at", "rejected_at", "seen_at", "created_at"}
# (the commit of the run after which it is killed, the delay after it): every commit changes
# the catalog file or its log (a stage's rows with its completion, ingest's batch, the run's rows), so each
# kill lands in a different place: between commits, mid-inference, before the run's end. Each
# killed run starts where the last one's commits left off. Stage times (tiny models, 2 cores):
# classify ~0.4 s, summarize ~0.45 s.
KILL_POINTS = [(1, 0.0), (1, 0.3), (2, 0.0), (2, 0.15), (3, 0.0), (3, 0.4), (4, 0.0), (5, 0.0)]


def make_inbox(inbox: Path) -> None:
    inbox.mkdir()
    sentences = [f"Sentence {i} tells how the library budget grew again in year {2000 + i}." for i in range(40)]
    (inbox / "report.txt").write_text("\r\n".join(sentences[:20]), encoding="utf-8")
    (inbox / "notes.md").write_text("# Notes\n\n" + "\n\n".join(sentences[20:]), encoding="utf-8")
    (inbox / "page.html").write_text("<title>Page</title><p>" + "</p><p>".join(sentences[5:25]) + "</p>")
    (inbox / "scan.pdf").write_bytes(make_pdf(["\n".join(sentences[:12]), "\n".join(sentences[12:24])], title="Scan"))
    (inbox / "minutes.docx").write_bytes(make_docx(sentences[10:30], title="Minutes"))
    records = [{"id": "a", "text": " ".join(sentences[::3])}, {"id": "b"}, {"id": "c", "text": "Short record."}]
    (inbox / "records.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    (inbox / "copy.txt").write_text("\r\n".join(sentences[:20]), encoding="utf-8")  # report.txt again
    (inbox / "junk.txt").write_bytes(bytes(range(256)) * 4)
    (inbox / "cut.pdf").write_bytes(make_pdf(["gone"])[:100])


class Runs:
    """Real runs, each a process forked by one warmed-up `tests.stage_runner` server."""

    def __init__(self, models: tuple[str, str]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "tests.stage_runner"]
        self.models = models
        self.server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self, data: Path, inbox: Path, log: Path) -> int:
        assert self.server.stdin and self.server.stdout
        self.server.stdin.write(f"{data} {inbox} {self.models[0]} {self.models[1]} {log}\n")
        self.server.stdin.flush()
        return int(self.server.stdout.readline().split()[1])

    def wait(self) -> int:
        """The exit code of the run started last (-9 when it was killed)."""
        assert self.server.stdout
        return int(self.server.stdout.readline().split()[1])

    def complete(self, data: Path, inbox: Path, log: Path) -> None:
        self.start(data, inbox, log)
        assert self.wait() == 0, log.read_text()

    def close(self) -> None:
        if self.server.stdin:
            self.server.stdin.close()
        self.server.wait(timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_after_commits(runs: Runs, pid: int, data: Path, commits: int, delay: float = 0.0) -> bool:
    """SIGKILL the run `delay` seconds after its `commits`-th change of the catalog file; False
    if the run ended first."""
    catalog = data / "catalog.ducklake"

    def state() -> tuple[int, ...]:
        files = (catalog, catalog.with_name(catalog.name + ".wal"))
        return tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files)

    seen, changes = state(), 0
    while _alive(pid):
        now = state()
        if now != seen:
            seen, changes = now, changes + 1
            if changes >= commits:
                time.sleep(delay)
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.001)
    return runs.wait() == -signal.SIGKILL


def table_rows(data: Path) -> dict[str, dict[str, Counter[tuple]]]:
    """Every table's rows, less run ids and timestamps, from the typed reads and the sandbox."""
    store = Store(str(data))
    out: dict[str, dict[str, Counter[tuple]]] = {}
    for table in TABLES:
        parquet = store.read(table)
        columns = [c for c in parquet.column_names if c not in VOLATILE]
        _, stored = warehouse.query(store, f"SELECT {', '.join(columns)} FROM {table}")
        out[table] = {
            "parquet": Counter(_row(r[c] for c in columns) for r in parquet.to_pylist()),
            "warehouse": Counter(_row(r) for r in stored),
            "parquet_keys": Counter(tuple(r[k] for k in KEYS[table]) for r in parquet.to_pylist()),
        }
    return out


def _row(values: Iterable[Any]) -> tuple:
    """Floats rounded, JSON text in one canonical spelling (DuckDB respells it)."""
    return tuple(round(v, 6) if isinstance(v, float) else _canonical(v) for v in values)


def _canonical(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.dumps(json.loads(value), sort_keys=True)
    return value


@pytest.mark.processes
def test_runs_killed_at_every_stage_end_with_the_tables_of_a_clean_run(
    tmp_path: Path, tiny_bert_classifier: str, tiny_llama: str
) -> None:
    models = (tiny_bert_classifier, tiny_llama)
    inbox, clean, crashed = tmp_path / "inbox", tmp_path / "clean", tmp_path / "crashed"
    make_inbox(inbox)
    runs = Runs(models)
    kills = []
    for commits, delay in KILL_POINTS:
        pid = runs.start(crashed, inbox, tmp_path / f"kill-{len(kills)}.log")
        if kill_after_commits(runs, pid, crashed, commits, delay):
            kills.append((commits, delay))
    assert len(kills) >= 5, f"most runs ended before their kill: {kills}"
    runs.complete(crashed, inbox, tmp_path / "complete.log")
    # A run killed after a new file arrives (its text is notes.md again, and it sorts after it:
    # the clean run names the same source), then completed.
    (inbox / "zz-notes.md").write_text((inbox / "notes.md").read_text(encoding="utf-8"), encoding="utf-8")
    pid = runs.start(crashed, inbox, tmp_path / "kill-2.log")
    if kill_after_commits(runs, pid, crashed, 1):
        kills.append((1, 0.0))
    runs.complete(crashed, inbox, tmp_path / "complete-2.log")
    runs.complete(clean, inbox, tmp_path / "clean.log")  # one clean run over the same inbox
    runs.close()

    expected, got = table_rows(clean), table_rows(crashed)
    lost = duplicated = 0
    for table in TABLES:
        assert expected[table]["parquet"], f"the clean run wrote no {table}"
        for source in ("parquet", "warehouse"):
            lost += sum((expected[table][source] - got[table][source]).values())
            duplicated += sum((got[table][source] - expected[table][source]).values())
            assert got[table][source] == expected[table][source], f"{table} differs in {source}"
        assert max(got[table]["parquet_keys"].values()) == 1, f"a key of {table} is stored twice"
    _, runs = warehouse.query(Store(str(crashed)), "SELECT run_id, status FROM runs")
    assert len({r[0] for r in runs}) == len(runs) and ("completed" in {r[1] for r in runs})
    rows = sum(sum(expected[t]["parquet"].values()) for t in TABLES)
    print(f"\ncrash safety: {len(kills)} kills survived, {rows} rows compared, {lost} lost, {duplicated} duplicated")
    assert lost == 0 and duplicated == 0
