"""Summarization decoding paths side by side (issue 18): today's static batches, the shared-prefix
cache, shape buckets, compiled buckets, continuous batching, and vLLM where it is installed.

Called by `gpu_engine_bench.py decode` (prepare with `gpu_engine_bench.py prepare-decode`). For
each model shape (the SmolLM2-135M default and Qwen2.5-0.5B) it runs `summarize_texts`, the
function the flow calls, over the same real QMSum segments with every path, and prints output
tokens/s, segments/s, the share of summaries identical to today's path, and on CUDA the GPU's
busy share of a decode step (torch.profiler: kernel time over wall time of one profiled batch).
A model directory without weights gets random ones (throughput does not depend on them).
Measured, not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.inference.decoding import Decoding, use_compile_cache
from tasks.inference.engine import BatchLimits
from tasks.inference.models import default_cache_dir, load_tokenizer, resolve
from tasks.summarize.summarize import SummarizerSpec, Summary, frame_overhead, summarize_texts

PATHS: dict[str, Decoding] = {
    "today (static batches)": Decoding(),
    "prefix cache": Decoding(prefix_cache=True),
    "prefix cache + buckets": Decoding(prefix_cache=True, buckets=True),
    "continuous + prefix": Decoding(prefix_cache=True, continuous=True),
}
COMPILED = Decoding(buckets=True, compiled=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(device: str, fn: Callable[[], list[Summary]]) -> tuple[list[Summary], float]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def busy_share(device: str, fn: Callable[[], Any], steps: int) -> str:
    """Wall time and GPU kernel time per decode step of one profiled call."""
    if not device.startswith("cuda"):
        return "n/a on CPU"
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        sync(device)
    wall = time.perf_counter() - start
    busy = sum(e.self_device_time_total for e in prof.key_averages()) / 1e6
    return f"{wall / steps * 1e3:6.1f} ms/step, GPU busy {busy / steps * 1e3:5.1f} ms ({busy / wall:5.1%})"


def report(name: str, out: list[Summary], seconds: float, reference: list[Summary] | None) -> str:
    produced = sum(s.n_output_tokens for s in out)
    same = (
        ""
        if reference is None
        else f"  identical {sum(a.text == b.text for a, b in zip(out, reference, strict=True))}/{len(out)}"
    )
    rates = f"{produced / seconds:9.1f} output tokens/s {len(out) / seconds:7.3f} segments/s"
    return f"  {name:<28} {rates} ({seconds:7.1f} s){same}"


def compare(
    model_dir: Path, texts_for: Callable[[Any, int], list[str]], device: str, rows: int | None, new_tokens: int
) -> None:
    ref = resolve(str(model_dir), "summarizer")
    spec = SummarizerSpec(ref, max_new_tokens=new_tokens)
    texts = texts_for(load_tokenizer(ref.path), frame_overhead(ref))
    limits = BatchLimits(rows * 1200, rows) if rows else BatchLimits.for_device(device, generation=True)
    print(
        f"{model_dir.name}: {len(texts)} segments, up to {limits.max_rows} rows, max_new_tokens {new_tokens}, {device}"
    )
    summarize_texts(spec, texts[:2], device, decoding=Decoding())  # load and warm up
    reference: list[Summary] | None = None
    for name, decoding in PATHS.items():
        out, seconds = timed(device, lambda d=decoding: summarize_texts(spec, texts, device, limits=limits, decoding=d))
        print(report(name, out, seconds, reference), flush=True)
        reference = reference or out
        if device.startswith("cuda"):
            one = texts[: limits.max_rows]
            step = busy_share(
                device,
                lambda d=decoding, o=one: summarize_texts(spec, o, device, limits=limits, decoding=d),
                new_tokens,
            )
            print(f"    one batch of {len(one)}: {step}", flush=True)
    if device.startswith("cuda"):
        use_compile_cache(default_cache_dir())
        for attempt in ("compiled buckets (cold)", "compiled buckets (warm)"):
            out, seconds = timed(device, lambda: summarize_texts(spec, texts, device, limits=limits, decoding=COMPILED))
            print(report(attempt, out, seconds, reference), flush=True)
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        print("  vllm: not installed on this machine")
        return
    out, seconds = timed(device, lambda: summarize_texts(spec, texts, device, limits=limits, engine="vllm"))
    print(report("vllm (no repeat ban)", out, seconds, reference), flush=True)
