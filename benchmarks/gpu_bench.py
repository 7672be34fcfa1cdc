"""The engine's GPU path: bf16, SDPA, token-budget batches (measured, not asserted).

Usage on a CUDA machine: python benchmarks/gpu_bench.py [--peak-tflops X]
Models are built from their configurations with random weights (throughput does not depend on
the weights, and no model hub is needed): BERT-large for classification at 384 tokens (the
MLPerf offline shape), and a SmolLM2-135M-shaped Llama for batched greedy generation.
Prints tokens/s, samples/s and model FLOPs utilization (MFU) for token budgets 16k-64k.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.inference.engine import BatchLimits, pad_batch, plan_batches

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(name: str, override: float | None) -> float:
    if override:
        return override
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), float("nan"))


def classification(peak: float, n_samples: int) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, num_labels=2
    )
    model = BertForSequenceClassification(config).to("cuda", torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters() if p.dim() > 1) - config.vocab_size * config.hidden_size
    seq = 384
    rows = [[101] + [1000 + (i % 20000)] * (seq - 2) + [102] for i in range(n_samples)]
    flops_per_sample = 2 * params * seq + 4 * config.num_hidden_layers * seq * seq * config.hidden_size
    for budget in (16384, 32768, 65536):
        limits = BatchLimits(token_budget=budget, max_rows=budget // seq)
        batches = plan_batches([seq] * len(rows), limits)
        with torch.inference_mode():
            for batch in batches[:2]:  # warm up
                ids, mask = pad_batch([rows[i] for i in batch], 0, left=False)
                model(input_ids=ids.cuda(), attention_mask=mask.cuda())
            torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in batches:
                ids, mask = pad_batch([rows[i] for i in batch], 0, left=False)
                model(input_ids=ids.cuda(non_blocking=True), attention_mask=mask.cuda(non_blocking=True)).logits.argmax(
                    -1
                )
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        achieved = flops_per_sample * len(rows) / seconds / 1e12
        print(
            f"BERT-large bf16 seq {seq} budget {budget:>6}: {len(rows) / seconds:8.0f} samples/s "
            f"{len(rows) * seq / seconds:10.0f} tokens/s  {achieved:6.1f} TFLOP/s  MFU {achieved / peak:.1%}"
        )


def generation(peak: float, prompt: int, new_tokens: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).to("cuda", torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    for rows in (8, 32, 128):
        ids = torch.randint(100, 40000, (rows, prompt), device="cuda")
        with torch.inference_mode():
            model.generate(input_ids=ids[:, :32], max_new_tokens=4, do_sample=False)  # warm up
            torch.cuda.synchronize()
            start = time.perf_counter()
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        achieved = 2 * params * rows * (prompt + new_tokens) / seconds / 1e12
        print(
            f"SmolLM2-135M-shaped bf16 {rows:>3} x {prompt} prompt + {new_tokens} new: "
            f"{rows * new_tokens / seconds:8.0f} output tokens/s  MFU {achieved / peak:.2%}"
        )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    parser.add_argument("--samples", type=int, default=4096)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_bench: no CUDA device")
    name = torch.cuda.get_device_name()
    peak = peak_tflops(name, args.peak_tflops)
    print(f"{name}, torch {torch.__version__}, peak bf16 {peak} TFLOP/s")
    classification(peak, args.samples)
    generation(peak, prompt=512, new_tokens=64)


if __name__ == "__main__":
    main()
