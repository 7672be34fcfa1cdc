"""Prefect's share of a run's wall time (measured, not asserted).

Usage: .venv/bin/python benchmarks/prefect_overhead.py [CORPUS_DIR] [--documents 200] [--repeats 3]

The same documents go through the `process-documents` flow (a real Prefect server on loopback,
shards as task runs, artifacts, cache lookups) and through the same step functions called
directly in a loop, alternately, each into a fresh data directory. The models are fast
stand-ins (tiny random models on the default models' real tokenizers), so the work left is the
part Prefect adds to: ingest, segmentation, storage, the warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.params import ProcessParams


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

    from tasks.models import load_tokenizer, resolve

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


def start_server(home: Path) -> subprocess.Popen[bytes]:
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

    from tasks import steps

    started = datetime.now(UTC)
    plan = p.make_plan()
    run_id = steps.new_run_id()
    stages = {"ingest": steps.step_ingest(p.data_dir, p.inputs, run_id)}
    seconds = {"ingest": stages["ingest"]["seconds"]}
    for shard in steps.step_shard(p.data_dir, stages["ingest"]["doc_ids"], p.shard_documents):
        ids = list(shard.doc_ids)
        for role, seg in (("classifier", plan.classifier_segments), ("summarizer", plan.summarizer_segments)):
            assert seg is not None
            out = steps.step_segment(p.data_dir, seg, ids, run_id, role, shard.index)
            seconds["segment"] = seconds.get("segment", 0) + out["seconds"]
        for stage, step in (
            ("classify", steps.step_classify),
            ("summarize", steps.step_summarize),
            ("aggregate", steps.step_aggregate),
        ):
            out = step(p.data_dir, plan, ids, run_id, "cpu", None, shard.index)
            seconds[stage] = seconds.get(stage, 0) + out["seconds"]
    steps.step_record_run(p.data_dir, run_id, None, plan.config_id, started, {}, stages, "completed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--chars", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shard-documents", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longdoc-prefect-overhead-"))
    inbox = work / "inbox"
    inbox.mkdir()
    for n, text in enumerate(documents(Path(args.corpus), args.documents, args.chars)):
        (inbox / f"doc{n:04d}.txt").write_text(text, encoding="utf-8")
    classifier, summarizer = stand_in_models(work / "models")
    server = start_server(work / "prefect")
    try:
        from flows.process import process_documents

        def params(name: str) -> ProcessParams:
            return ProcessParams(
                inputs=[str(inbox)],
                data_dir=str(work / name),
                classifier=classifier,
                summarizer=summarizer,
                max_new_tokens=8,
                device="cpu",
                shard_documents=args.shard_documents,
            )

        plain_run(params("warm-up"))  # loads the models and imports once, for both sides
        times: dict[str, list[float]] = {"prefect": [], "plain": []}
        for r in range(args.repeats):
            for side in ("prefect", "plain") if r % 2 == 0 else ("plain", "prefect"):
                start = time.perf_counter()
                if side == "prefect":
                    report = process_documents(params(f"{side}-{r}"))
                    stage_seconds = report["stage_seconds"]
                else:
                    stage_seconds = plain_run(params(f"{side}-{r}"))
                times[side].append(time.perf_counter() - start)
                print(f"{side}: {times[side][-1]:.1f} s, stages {stage_seconds}", flush=True)
        with_prefect, plain = statistics.median(times["prefect"]), statistics.median(times["plain"])
        counts = report["counts"]
        print(
            f"{counts['documents']} documents, {counts.get('shards', 0)} shards, "
            f"{counts.get('classifier_segments_new', 0)} + {counts.get('summarizer_segments_new', 0)} segments"
        )
        print(f"through Prefect: median {with_prefect:.1f} s  {[round(t, 1) for t in times['prefect']]}")
        print(f"steps directly:  median {plain:.1f} s  {[round(t, 1) for t in times['plain']]}")
        print(f"Prefect's share of the wall time: {(with_prefect - plain) / with_prefect:.1%}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
