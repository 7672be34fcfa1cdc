"""One stage called directly on a worker thread, and inside a Prefect task of a flow run, in
alternation (measured, not asserted).

Usage: .venv/bin/python benchmarks/stage_in_task.py [CORPUS_DIR] [--stage segment|summarize]
           [--repeats 8] [--no-freeze]

For each run it prints the stage's wall seconds, its thread's CPU seconds, and the full (oldest
generation) garbage collections that fell inside it with their seconds. `--no-freeze` turns off
the garbage-collection policy (`tasks.inference.POLICY.freeze_garbage`), to see what a full collection costs once the
libraries and models are loaded. Prefect's temporary server runs, as under `longdoc run`.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefect_overhead import ProcessParams, StandIn, off_main

from flows.launch import configure_prefect


class FullCollections:
    """Full garbage collections and their seconds, from the collector's own callbacks."""

    def __init__(self) -> None:
        self.count, self.seconds, self._started = 0, 0.0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--stage", choices=["segment", "summarize"], default="segment")
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--no-freeze", action="store_true", help="no gc.freeze at loads and stage starts")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longdoc-stage-in-task-"))
    stand_in = StandIn(Path(args.corpus), work, args.documents)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    configure_prefect()

    from prefect import flow, task
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.runners import task_runner
    from storage.datasets import Store
    from tasks.run import pipeline, stages, steps

    if args.no_freeze:
        from tasks.inference import POLICY

        POLICY.freeze_garbage = False
    collections = FullCollections()

    def prepared(name: str) -> tuple[ProcessParams, Any, Any, str]:
        p = stand_in.params(name)
        plan, run_id, store = p.make_plan(), steps.new_run_id(), Store(p.data_dir)
        shard = steps.step_shard(store, steps.step_ingest(store, p.inputs, run_id).doc_ids, 200)[0]
        if args.stage == "summarize":
            stages.segment(store, plan, shard, run_id)
        return p, plan, shard, run_id

    def stage(p: ProcessParams, plan: Any, shard: Any, run_id: str) -> tuple[float, float, int, float]:
        count, seconds = collections.count, collections.seconds
        cpu, start = time.thread_time(), time.perf_counter()
        pipeline.run_stage(args.stage, Store(p.data_dir), plan, shard, run_id, "cpu")
        return (
            time.perf_counter() - start,
            time.thread_time() - cpu,
            collections.count - count,
            collections.seconds - seconds,
        )

    stage_task = task(stage, name=f"{args.stage}-stage")

    @flow(name="stage-in-task")
    def in_task(p: ProcessParams, plan: Any, shard: Any, run_id: str) -> tuple[float, float, int, float]:
        with task_runner(p) as runner:
            result: tuple[float, float, int, float] = runner.submit(
                stage_task, {"p": p, "plan": plan, "shard": shard, "run_id": run_id}
            ).result()
            return result

    rows: dict[str, list[tuple[float, float, int, float]]] = {"direct": [], "Prefect task": []}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for r in range(args.repeats + 1):  # the first round warms up
            for side in ("direct", "Prefect task") if r % 2 else ("Prefect task", "direct"):
                args_ = prepared(f"{side}-{r}".replace(" ", "-"))
                row = off_main(stage, *args_) if side == "direct" else in_task(*args_)
                if r:
                    rows[side].append(row)
                    print(
                        f"{side}: {row[0]:.2f} s, thread CPU {row[1]:.2f} s, {row[2]} full collections, {row[3]:.2f} s"
                    )
    for side, runs in rows.items():
        print(
            f"{args.stage}, {side:<12} median {statistics.median(r[0] for r in runs):.2f} s, thread CPU "
            f"{statistics.median(r[1] for r in runs):.2f} s; full collections {sum(r[2] for r in runs)} in "
            f"{sum(r[3] for r in runs):.2f} s over {len(runs)} runs ({'no freeze' if args.no_freeze else 'freeze'})"
        )


if __name__ == "__main__":
    main()
