"""The lake at scale: `longdoc run --no-classify --no-summarize` on N unique documents (measured,
not asserted; the targets are issue 16's).

Usage: .venv/bin/python benchmarks/lake_bench.py [--sizes 5000,50000] [--figures ingest,incremental,writers,dask]
           [--repeat 1] [--repo PATH] [--catalog CATALOG] [--pair-documents 5000] [--work DIR] [--json OUT]

One command gives every figure; each figure has its flag:
- `ingest` (per size in --sizes; add 500000 when asked): ingest docs/s from the run's own
  `runs.stage_seconds`, the flow's seconds, the process's wall time (the rest is process start
  and Prefect), peak RSS of the run's process tree, lake bytes vs the documents' Parquet bytes.
- `incremental` (per size): 10 new documents into an empty lake vs into the lake of N just made.
- `writers` (--pair-documents N): two halves by two `longdoc run` at once vs one after the other.
- `dask` (--pair-documents N): the same shards on a local Dask cluster of 2 workers vs 1.

`--repo` runs another checkout's code (e.g. a worktree of an older commit: the "before");
`--catalog` passes `--catalog` to every command (a branch that has it). Every run reports to
one Prefect server the benchmark starts. `--repeat R` repeats each figure into fresh lakes and
prints medians. Documents come from benchmarks/make_documents.py (the development corpus).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_documents import documents, write_documents  # noqa: E402

BASE_ARGS = ["--no-classify", "--no-summarize"]
FILE_DOCUMENTS = 100_000  # ~240 MB of JSONL


@dataclass
class Measured:
    """One `longdoc run` process: its wall time, the flow's own seconds, peak RSS of its tree."""

    wall_s: float
    flow_s: float
    ingest_s: float
    documents_new: int
    peak_rss_mb: float


class Bench:
    def __init__(self, repo: Path, work: Path, env: dict[str, str], catalog: str | None) -> None:
        self.repo, self.work, self.env, self.catalog = repo, work, env, catalog

    def longdoc(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flows.cli", *args]

    def lake_args(self, data: Path) -> list[str]:
        return ["--data-dir", str(data), *(["--catalog", self.catalog.format(name=data.name)] if self.catalog else [])]

    def start(self, inputs: list[Path], data: Path, extra: list[str]) -> subprocess.Popen:
        command = self.longdoc("run", *map(str, inputs), *self.lake_args(data), *BASE_ARGS, *extra)
        log = (self.work / f"{data.name}-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen(command, cwd=self.repo, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def run(self, inputs: list[Path], data: Path, extra: list[str] = []) -> Measured:  # noqa: B006
        return self.finish([self.start(inputs, data, extra)], data)[0]

    def finish(self, processes: list[subprocess.Popen], data: Path) -> list[Measured]:
        """Wait for the processes, polling each one's tree for its peak RSS; each one's run row."""
        import psutil

        started = time.monotonic()
        peaks = [0 for _ in processes]
        walls = [0.0 for _ in processes]
        while any(w == 0.0 for w in walls):
            for k, process in enumerate(processes):
                if walls[k]:
                    continue
                if process.poll() is not None:
                    walls[k] = time.monotonic() - started
                    if process.returncode != 0:
                        raise SystemExit(f"longdoc run failed ({process.returncode}); see {self.work}/*.log")
                    continue
                try:
                    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
                    peaks[k] = max(peaks[k], sum(p.memory_info().rss for p in tree if p.is_running()))
                except psutil.Error:
                    pass
            time.sleep(0.1)
        rows = self.runs(data)[-len(processes) :]
        return [
            Measured(wall, row["seconds"], row["ingest_s"], row["documents_new"], peak / 2**20)
            for wall, peak, row in zip(walls, peaks, rows, strict=True)
        ]

    def runs(self, data: Path) -> list[dict]:
        """The lake's runs, oldest first (`longdoc query`, so any storage layout answers)."""
        sql = (
            "SELECT seconds, CAST(stage_seconds->>'$.ingest' AS DOUBLE) AS ingest_s, "
            "CAST(counts->>'$.documents_new' AS BIGINT) AS documents_new FROM runs ORDER BY started_at"
        )
        out = subprocess.run(
            self.longdoc("query", sql, *self.lake_args(data)[2:], "--data-dir", str(data), "--format", "json"),
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)


def lake_bytes(data: Path) -> int:
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file())


def documents_parquet_bytes(inputs: list[Path], out: Path) -> int:
    """The documents (id, text) as one Parquet file with pyarrow's defaults: the data's own size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, texts = [], []
    for path in inputs:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            ids.append(record["id"])
            texts.append(record["text"])
    pq.write_table(pa.table({"id": ids, "text": pa.array(texts, pa.large_string())}), out)
    return out.stat().st_size


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def ingest_figures(bench: Bench, n: int, fresh: Callable[[str], Path], incremental: bool) -> dict[str, float]:
    # One JSONL file up to FILE_DOCUMENTS (5k and 50k: one file, cut into record ranges when
    # large); past that several, as a record file over 1 GiB is rejected (Limits).
    files = math.ceil(n / FILE_DOCUMENTS)
    if files == 1:
        inputs = [bench.work / f"docs-{n}.jsonl"]
        if not inputs[0].exists():
            write_documents(n, inputs[0])
    else:
        folder = bench.work / f"docs-{n}"
        inputs = sorted(folder.glob("*.jsonl")) or write_documents(n, folder, files=files)
    data = fresh(f"lake-{n}")
    m = bench.run(inputs, data)
    ref = documents_parquet_bytes(inputs, bench.work / f"docs-{n}.parquet")
    figures = {
        "ingest_s": m.ingest_s,
        "docs_per_s": m.documents_new / m.ingest_s if m.ingest_s else float("nan"),
        "flow_s": m.flow_s,
        "wall_s": m.wall_s,
        "peak_rss_mb": m.peak_rss_mb,
        "lake_mb": lake_bytes(data) / 1e6,
        "docs_parquet_mb": ref / 1e6,
    }
    if incremental:
        extra = bench.work / f"extra-{n}.jsonl"
        with extra.open("w", encoding="utf-8") as sink:  # a tag of its own: 10 new documents
            sink.writelines(json.dumps(r) + "\n" for r in documents(10, f"extra{n}-{time.monotonic_ns()}"))
        into_full, into_empty = bench.run([extra], data), bench.run([extra], fresh(f"empty-{n}"))
        figures |= {
            "incr_full_flow_s": into_full.flow_s,
            "incr_empty_flow_s": into_empty.flow_s,
            "incr_full_wall_s": into_full.wall_s,
            "incr_empty_wall_s": into_empty.wall_s,
            "incr_full_rss_mb": into_full.peak_rss_mb,
            "incr_empty_rss_mb": into_empty.peak_rss_mb,
        }
    return figures


def pair_figures(bench: Bench, n: int, fresh: Callable[[str], Path], which: list[str]) -> dict[str, float]:
    halves = bench.work / f"halves-{n}"
    if not halves.exists():
        write_documents(n, halves, files=2, tag="half")
    inputs = sorted(halves.glob("*.jsonl"))
    figures: dict[str, float] = {}
    if "writers" in which:
        at_once = fresh(f"two-writers-{n}")
        started = time.monotonic()
        both = bench.finish([bench.start([inputs[0]], at_once, []), bench.start([inputs[1]], at_once, [])], at_once)
        figures["writers_at_once_wall_s"] = time.monotonic() - started
        figures["writers_at_once_flow_s"] = sum(m.flow_s for m in both)
        in_turn = fresh(f"in-turn-{n}")
        started = time.monotonic()
        one_by_one = [bench.run([inputs[0]], in_turn), bench.run([inputs[1]], in_turn)]
        figures["writers_in_turn_wall_s"] = time.monotonic() - started
        figures["writers_in_turn_flow_s"] = sum(m.flow_s for m in one_by_one)
    if "dask" in which:
        shards = ["--task-runner", "dask", "--shard-documents", str(max(1, n // 8))]
        for workers in (1, 2):
            m = bench.run(inputs, fresh(f"dask{workers}-{n}"), [*shards, "--workers", str(workers)])
            figures[f"dask{workers}_flow_s"] = m.flow_s
            figures[f"dask{workers}_ingest_s"] = m.ingest_s
            figures[f"dask{workers}_wall_s"] = m.wall_s
    return figures


def prefect_server(work: Path, env: dict[str, str]) -> subprocess.Popen:
    """One Prefect server for every run (and for Dask workers, which must reach the same one)."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env |= {"PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    log = (work / "prefect-server.log").open("w")
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
    ]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(env["PREFECT_API_URL"] + "/health", timeout=5).read()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the Prefect server did not start; see {work}/prefect-server.log") from None
            time.sleep(0.5)


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    keys = list(dict.fromkeys(k for figures in rows.values() for k in figures))
    print(f"\n{title}")
    print(f"| {'figure':<24} | " + " | ".join(f"{name:>14}" for name in rows) + " |")
    print(f"|{'-' * 26}|" + "|".join("-" * 16 for _ in rows) + "|")
    for key in keys:
        cells = [rows[name].get(key) for name in rows]
        print(f"| {key:<24} | " + " | ".join(f"{v:>14.3f}" if v is not None else " " * 14 for v in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,50000", help="documents per ingest run, comma-separated")
    parser.add_argument("--figures", default="ingest,incremental,writers,dask")
    parser.add_argument("--pair-documents", type=int, default=5000, help="documents for `writers` and `dask`")
    parser.add_argument("--repeat", type=int, default=1, help="repeats of each figure; medians are printed")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout whose longdoc runs")
    parser.add_argument("--catalog", help="passed as --catalog; {name} is the lake's folder name")
    parser.add_argument("--work", type=Path, help="where inputs and lakes go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    which = args.figures.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="lake-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("LONGDOC_DATA_DIR", None)
    server = prefect_server(work, env)
    counter = iter(range(10**6))

    def fresh(name: str) -> Path:
        return work / f"{name}-{next(counter)}"

    bench = Bench(args.repo.resolve(), work, env, args.catalog)
    results: dict[str, dict[str, float]] = {}
    try:
        if "ingest" in which or "incremental" in which:
            for n in (int(s) for s in args.sizes.split(",")):
                runs = [ingest_figures(bench, n, fresh, "incremental" in which) for _ in range(args.repeat)]
                results[f"N={n}"] = median_of(runs)
        if "writers" in which or "dask" in which:
            n = args.pair_documents
            results[f"pair N={n}"] = median_of([pair_figures(bench, n, fresh, which) for _ in range(args.repeat)])
    finally:
        server.terminate()
        server.wait(timeout=60)
    load = os.getloadavg()
    print_table(f"lake_bench ({args.repo}, repeat {args.repeat}, load at end {load[0]:.2f})", results)
    if args.json:
        args.json.write_text(json.dumps({"repo": str(args.repo), "load": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()
