"""The engine's own classify and summarize paths on a CUDA device, over real QMSum segments.

Measured, not asserted. A device machine often cannot reach a model hub and takes little
luggage, so the default models travel as their configurations and tokenizers only:

  here:   python benchmarks/gpu_engine_bench.py prepare DIR [--corpus ../shared/corpus]
  there:  python3 benchmarks/gpu_engine_bench.py run DIR [--meetings N] [--summaries N]

The decoding paths of issue 18 (benchmarks/decoding_bench.py), both summarizer shapes:

  here:   python benchmarks/gpu_engine_bench.py prepare-decode DIR [--qwen QWEN_DIR] [--with-weights]
  there:  python3 benchmarks/gpu_engine_bench.py decode DIR --segments 1200 [--device cuda]
  (a CPU check: decode DIR --segments 8 --device cpu --new-tokens 16)

`run` draws each model's weights at random from its configuration (throughput does not depend
on the weights; random weights seldom emit end-of-sequence, so every summary runs to
max_new_tokens, the worst case) and then calls `score_texts` and `summarize_texts`, the very
functions the flow calls, with bf16, SDPA and token-budget batches. It also forces a real CUDA
out-of-memory error to check that the back-off halves the batch and loses no row.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tasks.classify.classify import DEFAULT_LABELS, ClassifierSpec, score_texts
from tasks.inference.engine import BatchLimits, plan_batches
from tasks.inference.models import load_tokenizer, resolve
from tasks.segment.segmenter import Segmenter
from tasks.summarize.summarize import SummarizerSpec, frame_overhead, summarize_texts

WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def prepare(target: Path, corpus: Path) -> None:
    """Copy the default models without their weights, and the corpus, into `target`."""
    for role in ("classifier", "summarizer"):
        source = Path(resolve("default", role).path)
        for path in source.rglob("*"):
            if path.is_file() and path.name not in WEIGHTS and path.suffix != ".md":
                dest = target / role / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
    shutil.copy2(corpus / "qmsum.jsonl", target / "qmsum.jsonl")
    print(f"prepared {target}: {sum(p.stat().st_size for p in target.rglob('*') if p.is_file()) / 1e6:.1f} MB")


def random_weights(directory: Path, causal: bool) -> None:
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    if any((directory / name).exists() for name in WEIGHTS):
        return
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(directory)
    model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)
    model.save_pretrained(directory)


def segments(directory: Path, meetings: int, tokenizer: object, max_tokens: int, overhead: int) -> list[str]:
    lines = (directory / "qmsum.jsonl").read_text(encoding="utf-8").splitlines()[:meetings]
    texts = [json.loads(line)["text"] for line in lines]
    seg = Segmenter(tokenizer, "bench", max_tokens, max_tokens // 8, overhead_tokens=overhead)
    return [t[s.char_start : s.char_end] for t, spans in zip(texts, seg.split_many(texts), strict=True) for s in spans]


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def padding_efficiency(lengths: list[int], batches: list[list[int]]) -> float:
    return sum(lengths) / sum(max(lengths[i] for i in b) * len(b) for b in batches)


def classification(directory: Path, meetings: int) -> None:
    import torch

    spec = ClassifierSpec(resolve(str(directory / "classifier"), "classifier"), DEFAULT_LABELS)
    tokenizer = load_tokenizer(spec.ref.path)
    texts = segments(directory, meetings, tokenizer, spec.ref.max_input_tokens, 2)
    score_texts(spec, texts[:256], "cuda")  # load and warm up
    print(f"classification: {len(texts)} segments of {meetings} meetings, budget {spec.ref.max_input_tokens} tokens")
    for budget in (16384, 32768, 65536):
        limits = BatchLimits(budget, budget // 16)
        scored, seconds = timed(score_texts, spec, texts, "cuda", limits=limits)
        lengths = [n for _, n, _ in scored]
        eff = padding_efficiency(lengths, plan_batches(lengths, limits))
        print(
            f"  engine budget {budget:>6}: {len(texts) / seconds:8.0f} segments/s {sum(lengths) / seconds:10.0f} "
            f"tokens/s  padding efficiency {eff:.3f}"
        )
    naive_rows = texts[:2048]
    _, seconds = timed(lambda: [score_texts(spec, naive_rows[i : i + 8], "cuda") for i in range(0, len(naive_rows), 8)])
    print(f"  input-order batches of 8 ({len(naive_rows)} segments): {len(naive_rows) / seconds:8.0f} segments/s")

    # A real out-of-memory error: one batch far larger than the card holds must be halved
    # until it fits, and every row must come back once, with the scores it gets on its own.
    big = (texts * (120_000 // len(texts) + 1))[:120_000]
    before = torch.cuda.memory_stats().get("num_ooms", 0)
    scored, seconds = timed(score_texts, spec, big, "cuda", limits=BatchLimits(10**12, 10**9))
    ooms = torch.cuda.memory_stats().get("num_ooms", 0) - before
    reference = score_texts(spec, big[:64], "cuda")
    worst = max(abs(a[0][k] - b[0][k]) for a, b in zip(scored[:64], reference, strict=True) for k in a[0])
    print(
        f"  out-of-memory back-off: {len(big)} rows in one planned batch -> {ooms} CUDA OOM errors caught, "
        f"{len(scored)} results back in {seconds:.1f} s, max score difference vs normal batches {worst:.4f}"
    )


def summarization(directory: Path, meetings: int, n: int) -> None:
    import tasks.summarize.summarize as summarize

    ref = resolve(str(directory / "summarizer"), "summarizer")
    spec = SummarizerSpec(ref)
    tokenizer = load_tokenizer(ref.path)
    texts = segments(directory, meetings, tokenizer, 1024, frame_overhead(ref))[:n]
    summarize_texts(spec, texts[:8], "cuda")  # load and warm up
    print(f"summarization: {len(texts)} segments of <= 1024 tokens, max_new_tokens {spec.max_new_tokens}")
    for rows in (16, 64, 128):
        limits = BatchLimits(rows * 1200, rows)
        out, seconds = timed(summarize_texts, spec, texts, "cuda", limits=limits)
        produced = sum(s.n_output_tokens for s in out)
        prompt = sum(s.n_input_tokens for s in out)
        print(
            f"  batched, up to {rows:>3} rows: {produced / seconds:8.0f} output tokens/s "
            f"({prompt / seconds:8.0f} prompt tokens/s, {len(texts) / seconds:6.1f} segments/s)"
        )
    single, seconds_single = timed(summarize_texts, spec, texts[:16], "cuda", limits=BatchLimits(10**9, 1))
    batched, seconds_batched = timed(summarize_texts, spec, texts[:16], "cuda", limits=BatchLimits(10**9, 16))
    same = sum(a.text == b.text for a, b in zip(single, batched, strict=True))
    rate_single = sum(s.n_output_tokens for s in single) / seconds_single
    rate_batched = sum(s.n_output_tokens for s in batched) / seconds_batched
    print(
        f"  16 segments one at a time: {rate_single:6.0f} output tokens/s; batched {rate_batched:6.0f} "
        f"({rate_batched / rate_single:.1f}x); identical outputs {same}/16 (bf16)"
    )
    out, seconds = timed(summarize_texts, spec, texts, "cuda", limits=BatchLimits(64 * 1200, 64), static_cache=True)
    print(
        f"  static cache (compiled decoding), up to 64 rows: {sum(s.n_output_tokens for s in out) / seconds:8.0f} "
        f"output tokens/s, compilation included ({seconds:.1f} s)"
    )
    out, seconds = timed(summarize_texts, spec, texts, "cuda", limits=BatchLimits(64 * 1200, 64), static_cache=True)
    print(f"  the same again, compiled: {sum(s.n_output_tokens for s in out) / seconds:8.0f} output tokens/s")
    original = summarize.no_repeat_in_output
    summarize.no_repeat_in_output = lambda *args: lambda input_ids, scores: scores  # type: ignore[assignment]
    try:
        out, seconds = timed(summarize_texts, spec, texts, "cuda", limits=BatchLimits(64 * 1200, 64))
    finally:
        summarize.no_repeat_in_output = original
    print(
        f"  without the repeat ban, up to 64 rows: {sum(s.n_output_tokens for s in out) / seconds:8.0f} "
        "output tokens/s (the ban's cost)"
    )


def prepare_decode(target: Path, corpus: Path, qwen: Path | None, with_weights: bool) -> None:
    """Both summarizer shapes (configuration and tokenizer; weights linked when asked) and the
    corpus; the Qwen shape is the default summarizer's unless a directory is named."""
    shapes = {
        "smollm2-135m": Path(resolve("smollm2", "summarizer").path),
        "qwen2.5-0.5b": qwen or Path(resolve("default", "summarizer").path),
    }
    for name, source in shapes.items():
        for path in source.rglob("*"):
            if not path.is_file() or path.suffix == ".md" or (path.name in WEIGHTS and not with_weights):
                continue
            dest = target / name / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.name in WEIGHTS:  # real weights for an identity check here: linked, not copied
                dest.symlink_to(path.resolve())
            else:
                shutil.copy2(path, dest)
    shutil.copy2(corpus / "qmsum.jsonl", target / "qmsum.jsonl")
    print(f"prepared {target}: {sum(p.stat().st_size for p in target.rglob('*') if p.is_file()) / 1e6:.1f} MB")


def decode(
    directory: Path, count: int, device: str, rows: int | None, new_tokens: int, segment_tokens: int, shapes: str
) -> None:
    from decoding_bench import compare

    meetings = [
        json.loads(line)["text"] for line in (directory / "qmsum.jsonl").read_text(encoding="utf-8").splitlines()
    ]

    def texts_for(tokenizer: object, overhead: int) -> list[str]:
        seg = Segmenter(tokenizer, "bench", segment_tokens, segment_tokens // 8, overhead_tokens=overhead)
        texts: list[str] = []
        for text in meetings:  # whole meetings until there are enough segments
            texts += [text[s.char_start : s.char_end] for s in seg.split(text)]
            if len(texts) >= count:
                break
        return texts[:count]

    wanted = set(shapes.split(",")) if shapes else None
    for model_dir in sorted(p for p in directory.iterdir() if p.is_dir() and (wanted is None or p.name in wanted)):
        random_weights(model_dir, causal=True)
        compare(model_dir, texts_for, device, rows, new_tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("prepare", "run", "prepare-decode", "decode"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    parser.add_argument("--meetings", type=int, default=40)
    parser.add_argument("--summaries", type=int, default=512)
    parser.add_argument("--qwen", type=Path, default=None, help="a Qwen directory; the default summarizer's when empty")
    parser.add_argument("--with-weights", action="store_true")
    parser.add_argument("--segments", type=int, default=1200)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=None, help="rows per batch; the device's default when empty")
    parser.add_argument("--new-tokens", type=int, default=80)
    parser.add_argument("--segment-tokens", type=int, default=1024)
    parser.add_argument("--shapes", default="", help="model folders to run, comma-separated; all when empty")
    args = parser.parse_args()
    if args.action == "prepare":
        prepare(args.directory, args.corpus)
        return
    if args.action == "prepare-decode":
        prepare_decode(args.directory, args.corpus, args.qwen, args.with_weights)
        return
    if args.action == "decode":
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            sys.exit("gpu_engine_bench: no CUDA device")
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"{args.device}, torch {torch.__version__}, load {' '.join(load)}")
        decode(args.directory, args.segments, args.device, args.rows, args.new_tokens, args.segment_tokens, args.shapes)
        return
    import torch
    import transformers

    if not torch.cuda.is_available():
        sys.exit("gpu_engine_bench: no CUDA device")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, transformers {transformers.__version__}")
    random_weights(args.directory / "classifier", causal=False)
    random_weights(args.directory / "summarizer", causal=True)
    classification(args.directory, args.meetings)
    summarization(args.directory, args.meetings, args.summaries)


if __name__ == "__main__":
    main()
