"""What a commit and a read cost on a DuckDB catalog file (measured, not asserted).

    .venv/bin/python benchmarks/catalog_bench.py LAKE_DIR [--repo PATH] [--commits 200]

Copies LAKE_DIR's catalog (not its data files) into a fresh folder, then times `--commits`
rounds of what a stage does on the lake: a write connection that commits 5 rows, and a read
connection that counts them. `--repo` runs another checkout's `storage.lake` (the "before").
Prints the median and total milliseconds of each, and the catalog's files afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(lake: Path, commits: int) -> dict[str, float]:
    from storage.lake import LakeRef, connect

    ref = LakeRef(str(lake))
    with connect(ref) as con:
        con.execute("CREATE TABLE lake.bench_rows (n INTEGER, note VARCHAR)")
    writes, reads = [], []
    for i in range(commits):
        started = time.perf_counter()
        with connect(ref) as con:
            con.execute("BEGIN")
            con.execute("INSERT INTO lake.bench_rows SELECT range, ? FROM range(5)", [f"round {i}"])
            con.execute("COMMIT")
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        with connect(ref, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM lake.bench_rows").fetchone()[0] == 5 * (i + 1)
        reads.append(time.perf_counter() - started)
    return {
        "write_median_ms": statistics.median(writes) * 1000,
        "read_median_ms": statistics.median(reads) * 1000,
        "total_s": sum(writes) + sum(reads),
        "catalog_mb": sum(f.stat().st_size for f in lake.glob("catalog.ducklake*")) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lake", type=Path)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.commits)))
        return
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as work:
        lake = Path(work) / "lake"
        lake.mkdir()
        shutil.copyfile(args.lake / "catalog.ducklake", lake / "catalog.ducklake")
        if (args.lake / "catalog.ducklake.wal").exists():
            shutil.copyfile(args.lake / "catalog.ducklake.wal", lake / "catalog.ducklake.wal")
        env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}
        cmd = [sys.executable, __file__, str(args.lake), "--commits", str(args.commits), "--child", str(lake)]
        out = subprocess.run(cmd, env=env, cwd=args.repo, check=True, capture_output=True, text=True).stdout
    print(json.dumps({"repo": str(args.repo), **json.loads(out.splitlines()[-1])}))


if __name__ == "__main__":
    main()
