"""Prefect's share of a run's wall time (measured, not asserted).

Usage: .venv/bin/python benchmarks/prefect_overhead.py [CORPUS_DIR] [--documents 200] [--repeats 3]
           [--warm-up 2] [--shard-documents 200] [--server temporary|own]
           [--torch-threads N] [--trace] [--server-setting NAME=VALUE ...]

The same documents go through the `process-documents` flow (a real Prefect server on loopback,
shards as task runs, artifacts, cache lookups) and through the same step functions called
directly in a loop, in rotation, each into a fresh data directory. The models are fast
stand-ins (tiny random models on the default models' real tokenizers), so the work left is the
part Prefect adds to: ingest, segmentation, storage, the warehouse.

The server is Prefect's temporary one, started at the first flow run with the settings
`longdoc run` gives it (`flows.launch.configure_prefect`), unless `--server own` starts
`prefect server start` with all its services and Prefect's defaults, as a deployment's server
runs. The flow runs twice per round: without flow-run heartbeats (as `longdoc run` runs it on
a temporary server, `flows.launch.flow_run_settings`) and with Prefect's default heartbeats (as
a deployment runs it). Prefect's heartbeat thread sleeps in one-second steps, and a flow run
waits for it to wake before it returns.

No model runs on the main thread, on either side: the flow runs its tasks on a worker thread
of its task runner, so the direct side runs in a fresh worker thread too, and the stand-in
models are made and warmed up on one. Every thread that runs torch keeps its own OpenMP team;
once two teams exist on this 2-core machine (more OpenMP threads than cores), the same steps
take about a third longer on either thread (BENCHMARKS.md). A comparison across those regimes
measures OpenMP, not the orchestrator.

For each side it prints the wall time, the stages' own seconds, the time outside the stages,
and the CPU seconds of this process and of the server process; `--trace` adds, per flow run,
the HTTP requests by route, the events and the log records sent to the server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.launch import configure_prefect
from flows.params import ProcessParams
from tasks.run.results import RunReport


def documents(corpus: Path, n: int, chars: int) -> list[str]:
    """`n` documents of about `chars` characters, cut from QMSum meetings at line ends."""
    meetings = [json.loads(line)["text"] for line in (corpus / "qmsum.jsonl").read_text().splitlines()]
    out: list[str] = []
    for text in meetings:
        start = 0
        while start < len(text) - chars and len(out) < n:
            end = text.rfind("\n", start, start + chars) + 1 or start + chars
            out.append(text[start:end])
            start = end
    return out[:n]


def stand_in_models(directory: Path) -> tuple[str, str]:
    """A tiny classifier and a tiny decoder on the default models' tokenizers."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

    from tasks.inference.models import load_tokenizer, resolve

    torch.manual_seed(0)
    paths = []
    for role in ("classifier", "summarizer"):
        tokenizer = load_tokenizer(resolve("default", role).path)
        size = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
        if role == "classifier":
            labels = {0: "business", 1: "technology", 2: "science"}
            config = BertConfig(vocab_size=len(tokenizer), id2label=labels, **size)
            model = BertForSequenceClassification(config)
        else:
            config = LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=1, max_position_embeddings=2048, **size)
            model = LlamaForCausalLM(config)
        path = directory / role
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(str(path))
    return paths[0], paths[1]


class StandIn:
    """An inbox of `n` documents cut from QMSum and the stand-in models, under `work`; the flow's
    parameters for one data directory there."""

    def __init__(self, corpus: Path, work: Path, n: int, chars: int = 6000) -> None:
        self.work, self.inbox = work, work / "inbox"
        self.inbox.mkdir()
        for i, text in enumerate(documents(corpus, n, chars)):
            (self.inbox / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
        self.classifier, self.summarizer = off_main(stand_in_models, work / "models")

    def params(self, name: str, **fields: Any) -> ProcessParams:
        return ProcessParams(
            inputs=[str(self.inbox)],
            data_dir=str(self.work / name),
            classifier=self.classifier,
            summarizer=self.summarizer,
            max_new_tokens=8,
            device="cpu",
            **fields,
        )


def start_server(home: Path, settings: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ |= {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | (settings or {}),
    )
    for _ in range(240):
        try:
            urllib.request.urlopen(os.environ["PREFECT_API_URL"] + "/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    raise SystemExit("Prefect server did not start")


def plain_run(p: ProcessParams) -> dict[str, float]:
    """The flow's steps in a loop, with no orchestrator; seconds per stage."""
    from datetime import UTC, datetime

    from storage.datasets import Store
    from tasks.run import steps
    from tasks.run.pipeline import add_up, run_shard

    started, store = datetime.now(UTC), Store(p.data_dir)
    plan = p.make_plan()
    run_id = steps.new_run_id()
    ingested = steps.step_ingest(store, p.inputs, run_id)
    shards = steps.step_shard(store, ingested.doc_ids, p.shard_documents)
    results = add_up([run_shard(store, plan, shard, run_id, "cpu") for shard in shards]).replace(ingest=ingested)
    steps.step_record_run(store, run_id, None, plan.config_id, started, {}, results, "completed")
    return {r.STAGE: r.seconds for r in results.stages() if r.STAGE != "shard"}


class Meter:
    """CPU seconds of this process and of the server (with its children), and what the client
    sent: HTTP requests by route, events, log records for the API."""

    def __init__(self) -> None:
        import psutil

        self.client = psutil.Process()
        self.server: Any = None  # set once the server runs
        self.requests: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.logs = 0
        self._patch()

    def cpu(self) -> tuple[float, float]:
        def seconds(p: Any) -> float:
            t = p.cpu_times()
            return float(t.user + t.system)

        server = seconds(self.server) + sum(seconds(c) for c in self.server.children(recursive=True))
        return seconds(self.client), server

    def snapshot(self) -> tuple[Counter[str], Counter[str], int]:
        return Counter(self.requests), Counter(self.events), self.logs

    def _patch(self) -> None:
        import httpx
        from prefect.events import worker
        from prefect.logging import handlers

        meter = self

        def route(request: httpx.Request) -> str:
            path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", request.url.path.removeprefix("/api"))
            return f"{request.method} {path}"

        for client in (httpx.AsyncClient, httpx.Client):
            send = client.send

            def counted(self: Any, request: httpx.Request, *a: Any, _send: Any = send, **k: Any) -> Any:
                meter.requests[route(request)] += 1
                return _send(self, request, *a, **k)

            client.send = counted  # type: ignore[method-assign]

        emit_log = handlers.emit_api_log

        def counted_log(log: dict[str, Any]) -> None:
            meter.logs += 1
            emit_log(log)

        handlers.emit_api_log = counted_log
        handle = worker.EventsWorker._handle

        async def counted_event(self: Any, event: Any) -> None:
            meter.events[event.event.rsplit(".", 1)[0]] += 1
            await handle(self, event)

        worker.EventsWorker._handle = counted_event  # type: ignore[method-assign]


SIDES = ("prefect-no-heartbeat", "prefect", "direct")
LABELS = ("Prefect, no heartbeats", "Prefect, heartbeats", "steps directly")


def off_main(fn: Any, *args: Any) -> Any:
    """`fn(*args)` on a fresh worker thread, as the flow's thread runner runs a task."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--chars", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=2, help="untimed runs of every side first (default 2)")
    parser.add_argument("--shard-documents", type=int, default=200, help="as `longdoc run` (default 200)")
    parser.add_argument(
        "--server",
        choices=["temporary", "own"],
        default="temporary",
        help="Prefect's temporary server with longdoc's settings, as `longdoc run` uses it (default), "
        "or `prefect server start` with every service and Prefect's defaults, as a deployment's",
    )
    parser.add_argument(
        "--torch-threads", type=int, help="torch's threads on both sides (default: torch's, one per core)"
    )
    parser.add_argument("--trace", action="store_true", help="requests, events and log records per flow run")
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server, e.g. PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE=1",
    )
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)  # every thread's OpenMP team takes this size
    work = Path(tempfile.mkdtemp(prefix="longdoc-prefect-overhead-"))
    stand_in = StandIn(Path(args.corpus), work, args.documents, args.chars)
    settings = dict(setting.split("=", 1) for setting in args.server_setting)
    server = None
    if args.server == "own":
        server = start_server(work / "prefect", settings)
    else:  # Prefect starts its temporary server at the first flow run, as under `longdoc run`
        os.environ.pop("PREFECT_API_URL", None)
        os.environ |= {"PREFECT_HOME": str(work / "prefect")} | settings
        configure_prefect()
    try:
        import psutil
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from flows.process import process_documents

        meter = Meter()

        def params(name: str) -> ProcessParams:
            return stand_in.params(name, shard_documents=args.shard_documents)

        reports: list[RunReport] = []

        def run(side: str, p: ProcessParams) -> dict[str, float]:
            if side == "direct":
                return dict(off_main(plain_run, p))
            # `longdoc run` turns heartbeats off only without PREFECT_API_URL; here there is one.
            no_heartbeat = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None} if side == "prefect-no-heartbeat" else {}
            with temporary_settings(updates=no_heartbeat):
                reports.append(process_documents(p))
            return dict(reports[-1].stage_seconds)

        # Loads the models and imports once, and lets the new server settle, for every side.
        for w in range(args.warm_up):
            for side in SIDES:
                run(side, params(f"warm-up-{side}-{w}"))
        meter.server = psutil.Process(server.pid) if server else temporary_server()
        rows: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for r in range(args.repeats):
            for side in SIDES[r % len(SIDES) :] + SIDES[: r % len(SIDES)]:
                before, traced = meter.cpu(), meter.snapshot()
                start = time.perf_counter()
                stage_seconds = run(side, params(f"{side}-{r}"))
                wall = time.perf_counter() - start
                after = meter.cpu()
                stages = sum(stage_seconds.values())
                row = {
                    "wall": wall,
                    "stages": stages,
                    "outside": wall - stages,
                    "client_cpu": after[0] - before[0],
                    "server_cpu": after[1] - before[1],
                }
                rows[side].append(row)
                print(
                    f"{side}: {wall:.1f} s, stages {stages:.1f} s ({_fmt(stage_seconds)}), outside them "
                    f"{row['outside']:.1f} s; CPU s: here {row['client_cpu']:.1f}, server {row['server_cpu']:.1f}; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if args.trace and side != "direct":
                    requests, events, logs = meter.snapshot()
                    for what, counts in (("requests", requests - traced[0]), ("events", events - traced[1])):
                        print(f"  {what} {sum(counts.values())}: {dict(counts.most_common())}")
                    print(f"  log records for the server: {logs - traced[2]}")
        counts = reports[-1].counts
        print(
            f"{counts['documents']} documents, {counts.get('shards', 0)} shards of up to {args.shard_documents}, "
            f"{counts.get('classifier_segments_new', 0)} + {counts.get('summarizer_segments_new', 0)} segments; "
            f"{args.server} server, settings {args.server_setting or 'default'}; "
            f"torch threads {args.torch_threads or 'default'}; "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        median = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in rows.items()}
        for side, label in zip(SIDES, LABELS, strict=True):
            print(
                f"{label:<22} median {median[side]['wall']:5.1f} s {[round(r['wall'], 1) for r in rows[side]]}; "
                f"stages {median[side]['stages']:.1f}, outside {median[side]['outside']:.1f}, "
                f"CPU s here {median[side]['client_cpu']:.1f}, server {median[side]['server_cpu']:.1f}"
            )
        direct = median["direct"]["wall"]
        for side, label in (("prefect-no-heartbeat", "without heartbeats"), ("prefect", "with heartbeats")):
            with_prefect = median[side]["wall"]
            # Sides that ran in the same round met the same machine; their ratio is steadier.
            paired = statistics.median(
                (p["wall"] - d["wall"]) / p["wall"] for p, d in zip(rows[side], rows["direct"], strict=True)
            )
            extra = (median[side]["outside"] - median["direct"]["outside"]) / with_prefect
            print(
                f"Prefect's share of the wall time, {label}: {(with_prefect - direct) / with_prefect:.1%} "
                f"of the medians, {paired:.1%} the median of rounds; time outside the stages adds {extra:.1%}"
            )
    finally:
        if server:
            server.terminate()
            server.wait()


def temporary_server() -> Any:
    """The server process Prefect started for this one."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        if "uvicorn" in " ".join(child.cmdline()):
            return child
    raise SystemExit("Prefect's temporary server is not running")


def _fmt(stage_seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in stage_seconds.items() if v >= 0.05)


if __name__ == "__main__":
    main()
