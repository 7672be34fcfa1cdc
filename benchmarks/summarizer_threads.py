"""Per-segment CPU speed of a decoder summarizer: prefill and decode tokens/s at 1 and 2 torch
threads, alone and beside a busy process (measured, not asserted).

Usage: python benchmarks/summarizer_threads.py MODEL_DIR [MODEL_DIR ...] [--corpus QMSUM_JSONL]
       [--prompt-tokens 900] [--new-tokens 40]

The prompt: --prompt-tokens tokens cut from a QMSum meeting.
Prefill: generating one token after the prompt (one forward pass over it); decode: the extra
time of --new-tokens more greedy tokens.
"Busy" starts one process that spins on a core for the whole measurement (another worker, or
another user's job on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path


def _spin() -> None:
    while True:
        pass


def measure(model_dir: str, text: str, prompt_tokens: int, new_tokens: int, threads: int) -> tuple[float, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer(text)["input_ids"][:prompt_tokens]])

    def generate(new: int) -> float:
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False)
        return time.perf_counter() - start

    with torch.inference_mode():
        model(ids[:, :32])  # warm-up
        first = generate(1)  # the prefill and one token
        total = generate(new_tokens + 1)
    return ids.shape[1] / first, new_tokens / max(total - first, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--corpus", default="/work/shared/corpus/qmsum.jsonl")
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--no-busy", action="store_true", help="skip the runs beside a spinning process")
    args = parser.parse_args()
    with Path(args.corpus).open(encoding="utf-8") as corpus:
        text = json.loads(corpus.readline())["text"]
    for busy in (False,) if args.no_busy else (False, True):
        spinner = None
        if busy:
            spinner = multiprocessing.Process(target=_spin, daemon=True)
            spinner.start()
        try:
            for model_dir in args.models:
                for threads in (1, 2):
                    load = os.getloadavg()[0]
                    prefill, decode = measure(model_dir, text, args.prompt_tokens, args.new_tokens, threads)
                    print(
                        f"{Path(model_dir).name:<40} threads {threads} busy {busy!s:<5} "
                        f"prefill {prefill:6.1f} tok/s  decode {decode:5.2f} tok/s  (load {load:.2f})",
                        flush=True,
                    )
        finally:
            if spinner is not None:
                spinner.terminate()


if __name__ == "__main__":
    main()
