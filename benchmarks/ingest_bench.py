"""Ingest at scale: documents per second and peak RSS of `longdoc run --no-classify --no-summarize`
over N synthetic unique documents, as one JSONL file or as many small .txt files.

    python benchmarks/ingest_bench.py make --documents 5000 --out /tmp/bench-5k
    python benchmarks/ingest_bench.py run /tmp/bench-5k/docs.jsonl --data-dir /tmp/d1
    python benchmarks/ingest_bench.py ingest /tmp/bench-5k/txt --data-dir /tmp/d2   # ingest alone

The documents are ~2.3 KB pieces of the development corpus's QMSum transcripts, each made unique
by a numbered first line and its own starting offset. Measured, never asserted (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path("/work/shared/corpus/qmsum.jsonl")
PIECE_CHARS = 2300


def synthetic_texts(n: int, corpus: Path = CORPUS) -> list[str]:
    """`n` unique texts of about PIECE_CHARS characters cut from the corpus's transcripts."""
    source = "\n".join(json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines())
    span = len(source) - PIECE_CHARS
    return [f"Document {i}.\n{source[(i * 7919) % span :][:PIECE_CHARS]}" for i in range(n)]


def make(n: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    texts = synthetic_texts(n)
    with (out / "docs.jsonl").open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    txt = out / "txt"
    for i, text in enumerate(texts):
        folder = txt / f"{i // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"d{i}.txt").write_text(text, encoding="utf-8")
    print(f"{n} documents in {out / 'docs.jsonl'} and {txt}/")


def run(inputs: list[str], data_dir: str, python: str) -> dict[str, float]:
    """One run in a fresh process; its ingest seconds (from `runs`) and peak RSS (GNU time)."""
    cmd = ["/usr/bin/time", "-f", "maxrss_kb=%M", python, "-m", "flows.cli", "run", *inputs]
    cmd += ["--data-dir", data_dir, "--no-classify", "--no-summarize"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"PREFECT_LOGGING_LEVEL": "WARNING"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    rss = int(re.findall(r"maxrss_kb=(\d+)", done.stderr)[-1]) / 1024
    query = [python, "-m", "flows.cli", "query", "--data-dir", data_dir, "--format", "json"]
    sql = "SELECT stage_seconds, counts FROM runs ORDER BY started_at DESC LIMIT 1"
    row = json.loads(subprocess.run([*query, sql], capture_output=True, text=True, check=True).stdout)[0]
    seconds = json.loads(row["stage_seconds"])["ingest"]
    docs = json.loads(row["counts"])["documents_new"]
    return {
        "documents_new": docs,
        "ingest_s": seconds,
        "docs_per_s": docs / seconds,
        "peak_rss_mb": rss,
        "wall_s": wall,
    }


def ingest_only(inputs: list[str], data_dir: str) -> dict[str, float]:
    """Ingest alone, in this process (no Prefect, no warehouse load): its seconds and this
    process's peak RSS. Run it in a fresh process per measurement."""
    import resource

    from storage.datasets import Store
    from tasks.run import steps

    start = time.perf_counter()
    result = steps.step_ingest(Store(data_dir), inputs, "bench")
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    new = result.documents_new
    return {"documents_new": new, "ingest_s": seconds, "docs_per_s": new / seconds, "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make_cmd = sub.add_parser("make")
    make_cmd.add_argument("--documents", type=int, required=True)
    make_cmd.add_argument("--out", type=Path, required=True)
    run_cmd = sub.add_parser("run")
    run_cmd.add_argument("inputs", nargs="+")
    run_cmd.add_argument("--data-dir", required=True)
    run_cmd.add_argument("--python", default=sys.executable)
    only_cmd = sub.add_parser("ingest", help="ingest alone, in this process")
    only_cmd.add_argument("inputs", nargs="+")
    only_cmd.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    if args.command == "make":
        make(args.documents, args.out)
    elif args.command == "ingest":
        print(json.dumps(ingest_only(args.inputs, args.data_dir) | {"load": os.getloadavg()[0]}))
    else:
        print(json.dumps(run(args.inputs, args.data_dir, args.python) | {"load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
