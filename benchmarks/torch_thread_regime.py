"""The same steps on a worker thread, on the main thread, and on a worker thread again once the
main thread has run torch (measured, not asserted).

Usage: .venv/bin/python benchmarks/torch_thread_regime.py [CORPUS_DIR] [--documents 200] [--repeats 3]

Prefect's thread runner runs tasks on worker threads. Every thread that runs torch keeps its own
OpenMP team, and GNU OpenMP (torch's on Linux) stops its threads spinning between parallel
regions once it manages more threads than the machine has cores, so that a second team makes
every team wait longer between regions. This prints the wall time and CPU seconds of the steps
of `benchmarks/prefect_overhead.py` (no orchestrator) in the three regimes, in that order: the
first two have one team, the third has two.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefect_overhead import StandIn, off_main, plain_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import psutil

    stand_in = StandIn(Path(args.corpus), Path(tempfile.mkdtemp(prefix="longdoc-thread-regime-")), args.documents)
    params = stand_in.params
    me = psutil.Process()

    def timed(regime: str, index: int) -> tuple[float, float]:
        cpu, start = sum(me.cpu_times()[:2]), time.perf_counter()
        p = params(f"{regime}-{index}")
        if regime.startswith("worker"):
            off_main(plain_run, p)
        else:
            plain_run(p)
        wall, cpu = time.perf_counter() - start, sum(me.cpu_times()[:2]) - cpu
        print(f"{regime}: {wall:.1f} s, CPU {cpu:.1f} s, threads {me.num_threads()}", flush=True)
        return wall, cpu

    off_main(plain_run, params("warm-up"))
    results = {}
    for regime in ("worker thread", "main thread", "worker thread, after the main thread"):
        results[regime] = [timed(regime, i) for i in range(args.repeats)]
    for regime, runs in results.items():
        walls = [w for w, _ in runs]
        print(
            f"{regime:<37} median {statistics.median(walls):4.1f} s {[round(w, 1) for w in walls]}, "
            f"CPU {statistics.median(c for _, c in runs):.1f} s"
        )


if __name__ == "__main__":
    main()
