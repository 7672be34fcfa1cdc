"""The inference engine against naive batching, on real segments of QMSum (measured, not asserted).

Usage: .venv/bin/python benchmarks/inference_bench.py [CORPUS_DIR] [--meetings N] [--summaries N]
  classification: engine (length-sorted, token-budget batches) vs transformers.pipeline(batch_size=8)
                  over the same segments and model, plus padding efficiency of both batchings;
  summarization:  batched greedy generation vs one segment at a time, same model and settings;
  memory:         peak RSS of classifying N and 10N segments in a fresh process each.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.classify.classify import DEFAULT_LABELS, ClassifierSpec, score_texts
from tasks.inference.engine import BatchLimits, plan_batches
from tasks.inference.models import load_model, load_tokenizer, resolve
from tasks.segment.segmenter import Segmenter
from tasks.summarize.summarize import SummarizerSpec, summarize_texts


def real_segments(corpus: Path, meetings: int, tokenizer: object, max_tokens: int) -> list[str]:
    lines = (corpus / "qmsum.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:meetings]]
    seg = Segmenter(tokenizer, "bench", max_tokens, max_tokens // 8, overhead_tokens=2)
    return [t[s.char_start : s.char_end] for t, spans in zip(texts, seg.split_many(texts), strict=True) for s in spans]


def padding_efficiency(lengths: list[int], batches: list[list[int]]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    return real / sum(max(lengths[i] for i in b) * len(b) for b in batches)


def classification(corpus: Path, meetings: int, repeats: int) -> None:
    import torch
    from transformers import pipeline

    spec = ClassifierSpec(resolve("default", "classifier"), DEFAULT_LABELS)
    tokenizer = load_tokenizer(spec.ref.path)
    texts = real_segments(corpus, meetings, tokenizer, spec.ref.max_input_tokens)
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    tokens = sum(lengths)
    score_texts(spec, texts[:16], "cpu")  # load and warm up
    pipe = pipeline(
        "feature-extraction",
        model=load_model(spec.ref.path, "embedding", "cpu"),
        tokenizer=tokenizer,
        device="cpu",
        batch_size=8,
        return_tensors=True,
    )

    def run_pipeline() -> None:
        for out in pipe(texts, truncation=True, max_length=spec.ref.max_input_tokens):
            torch.nn.functional.normalize(out[0].mean(0), dim=-1)  # the same pooling, done naively

    times: dict[str, list[float]] = {"engine": [], "pipeline": []}
    for _ in range(repeats):  # alternated, so a change in the machine's load hits both alike
        for name, run in (("engine", lambda: score_texts(spec, texts, "cpu")), ("pipeline", run_pipeline)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    engine, naive = statistics.median(times["engine"]), statistics.median(times["pipeline"])

    sorted_batches = plan_batches(lengths, BatchLimits.for_device("cpu", generation=False))
    fixed = [list(range(i, min(i + 8, len(texts)))) for i in range(0, len(texts), 8)]
    print(f"classification ({len(texts)} segments, {tokens:,} tokens, MiniLM-L6, CPU):")
    print(
        f"  engine   {len(texts) / engine:7.1f} segments/s {tokens / engine:8.0f} tokens/s  "
        f"padding efficiency {padding_efficiency(lengths, sorted_batches):.3f}"
    )
    print(
        f"  pipeline {len(texts) / naive:7.1f} segments/s {tokens / naive:8.0f} tokens/s  "
        f"padding efficiency {padding_efficiency(lengths, fixed):.3f} (batch_size=8, input order)"
    )
    print(f"  ratio    {naive / engine:.2f}x (medians of {repeats}, alternated; seconds {times})")
    flops = model_flops_per_token(load_model(spec.ref.path, "embedding", "cpu"), sum(lengths) / len(lengths))
    peak = matmul_peak()
    print(
        f"  compute: {flops / 1e6:.1f} MFLOP per token; engine {flops * tokens / engine / 1e9:.0f} GFLOP/s, "
        f"pipeline {flops * tokens / naive / 1e9:.0f} GFLOP/s; fp32 matmul peak of this machine {peak / 1e9:.0f} "
        f"GFLOP/s, so at most {peak / (flops * tokens / naive):.2f}x the pipeline in fp32"
    )


def model_flops_per_token(model: Any, mean_length: float) -> float:
    """Forward FLOPs per token: 2 per weight of the layers (embeddings are lookups) plus attention
    scores and values (4 x length x hidden per layer)."""
    config = model.config
    weights = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name and p.dim() > 1)
    return 2 * weights + 4 * mean_length * config.hidden_size * config.num_hidden_layers


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large fp32 matrix product on this machine's cores: the most any fp32 model gets."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / sorted(times)[repeats // 2]


def summarization(corpus: Path, n: int, max_new_tokens: int) -> None:
    spec = SummarizerSpec(resolve("default", "summarizer"), max_new_tokens)
    texts = real_segments(corpus, 3, load_tokenizer(spec.ref.path), 512)[:n]
    summarize_texts(spec, texts[:1], "cpu")  # load and warm up
    start = time.perf_counter()
    batched = summarize_texts(spec, texts, "cpu")
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    alone = [summarize_texts(spec, [t], "cpu")[0] for t in texts]
    t_alone = time.perf_counter() - start
    out_b, out_a = sum(s.n_output_tokens for s in batched), sum(s.n_output_tokens for s in alone)
    same = sum(a.text == b.text for a, b in zip(alone, batched, strict=True))
    # Reading the prompts costs the same batched or not (it is compute-bound), so it bounds the ratio.
    start = time.perf_counter()
    summarize_texts(SummarizerSpec(spec.ref, 1), texts, "cpu")
    t_prompts = time.perf_counter() - start
    print(f"summarization ({len(texts)} segments of <=512 tokens, SmolLM2-135M, greedy, {max_new_tokens} new, CPU):")
    print(f"  batched     {out_b / t_batched:6.1f} output tokens/s ({t_batched:.1f} s)")
    print(f"  one by one  {out_a / t_alone:6.1f} output tokens/s ({t_alone:.1f} s)")
    print(f"  ratio {t_alone / t_batched:.2f}x; identical outputs {same}/{len(texts)}")
    print(
        f"  reading the prompts alone (1 new token, batched): {t_prompts:.1f} s, so even free decoding gives "
        f"at most {t_alone / t_prompts:.2f}x; decoding {t_alone - t_prompts:.1f} s one by one, "
        f"{t_batched - t_prompts:.1f} s batched ({(t_alone - t_prompts) / max(t_batched - t_prompts, 1e-9):.2f}x)"
    )


def memory(corpus: Path, base: int) -> None:
    results = {}
    for n in (base, 10 * base):
        out = subprocess.run(
            [sys.executable, __file__, str(corpus), "--memory-child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[n] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = results[base], results[10 * base]
    print(
        f"memory: classify {a['segments']} segments peak {a['peak_mb']:.0f} MB; {b['segments']} segments peak "
        f"{b['peak_mb']:.0f} MB; ratio {b['peak_mb'] / a['peak_mb']:.2f}x"
    )


def memory_child(corpus: Path, n: int) -> None:
    """Classify the segments of n meetings through the store-level step (streaming); peak RSS."""
    from storage.datasets import Store
    from tasks.classify.classify import classify_segments
    from tasks.ingest.stage import ingest
    from tasks.segment.segment import segment_documents

    spec = ClassifierSpec(resolve("default", "classifier"), DEFAULT_LABELS)
    seg = Segmenter(load_tokenizer(spec.ref.path), "bench", 64, 8, overhead_tokens=2)
    with tempfile.TemporaryDirectory() as tmp:
        lines = (corpus / "qmsum.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (Path(tmp) / "in.jsonl").write_text("".join(lines[:n]), encoding="utf-8")
        store = Store(str(Path(tmp) / "data"))
        docs = ingest(store, [str(Path(tmp) / "in.jsonl")], "m").doc_ids
        segment_documents(store, docs, seg, "m-seg")
        counts = classify_segments(store, spec, docs, seg.segmenter_id, "m-lab", "cpu", chunk_rows=512)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"segments": counts["segments_classified"], "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--meetings", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="classification runs of each side")
    parser.add_argument("--summaries", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--memory-base", type=int, default=2, help="meetings in the 1x run")
    parser.add_argument("--only", choices=["classification", "summarization", "memory"])
    parser.add_argument("--memory-child", type=int)
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if args.memory_child:
        memory_child(corpus, args.memory_child)
        return
    if args.only in (None, "classification"):
        classification(corpus, args.meetings, args.repeats)
    if args.only in (None, "summarization"):
        summarization(corpus, args.summaries, args.max_new_tokens)
    if args.only in (None, "memory"):
        memory(corpus, args.memory_base)


if __name__ == "__main__":
    main()
