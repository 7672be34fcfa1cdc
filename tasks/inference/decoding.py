"""Greedy decoding for instruct decoders, with the per-step overhead cut: shape buckets, a shared
prompt prefix computed once, and (continuous.py) rows refilled as they finish.

Every path here must give the tokens `model.generate` gives on the same rows (tests check it on
CPU fp32). The layout that makes a shared prefix possible with left padding: each row is
`prefix + padding + suffix`, so the prefix sits at positions 0..p-1 in every row, and the suffix
is right-aligned so every row's last column is a real token. generate's position ids
(attention-mask cumsum) skip the padding, so positions match plain left padding exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.inference.engine import Cancellation

# Rows and prompt widths are rounded up to these sizes when buckets are on, so compiled or
# CUDA-graph-captured decode steps see few distinct shapes over a run (a compile costs ~45 s
# on an H100, BENCHMARKS.md). Past the last size, a multiple of it.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Widths step by 128 around the 1,024-token segments summaries read, so padding a prompt up to
# its bucket wastes at most ~12% of its prefill.
WIDTH_BUCKETS = (64, 128, 256, 384, 512, 640, 768, 896, 1024, 1152, 1280, 1536, 2048, 3072, 4096)

# processors(row indices, start) -> logits processors for those rows; `start` is where the
# generated tokens begin in the input_ids the processors will see.
Processors = Callable[[list[int], int], list[Any]]


def bucket(n: int, sizes: Sequence[int]) -> int:
    """The smallest size >= n, or n rounded up to a multiple of the largest size."""
    for size in sizes:
        if n <= size:
            return size
    return -(-n // sizes[-1]) * sizes[-1]


@dataclass(frozen=True)
class Decoding:
    """How a decoder's batches are generated. Buckets pay only where shapes are compiled or
    captured (`compiled`: static cache and torch.compile, buckets implied); `compiled` and
    `continuous` wait for GPU figures (issue 18); on CPU static batching measured faster."""

    prefix_cache: bool = False
    buckets: bool = False
    compiled: bool = False
    continuous: bool = False

    @staticmethod
    def for_device(device: str) -> Decoding:  # one default until a GPU measures the others
        return Decoding(prefix_cache=True)


@dataclass
class Generation:
    """What every decoding path needs besides the rows: the model and the greedy settings."""

    model: Any
    pad_id: int
    eos: list[int]
    max_new_tokens: int
    processors: Processors
    cancel: Cancellation
    stopping: list[Any] = field(default_factory=list)  # generate's stopping criteria (cancellation)
    prefixes: dict[tuple[int, ...], Any] = field(default_factory=dict)


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the prefix all rows share, leaving every row at least one token of its own."""
    shortest = min(len(r) for r in rows)
    first = rows[0]
    n = 0
    while n < shortest - 1 and all(r[n] == first[n] for r in rows):
        n += 1
    return n


def layout(rows: Sequence[Sequence[int]], prefix: int, width: int, pad_id: int) -> tuple[Any, Any]:
    """Input ids and mask: the shared `prefix` first, then padding, then each row's own tokens."""
    import torch

    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, row in enumerate(rows):
        ids[n, :prefix] = torch.tensor(row[:prefix], dtype=torch.long)
        mask[n, :prefix] = 1
        own = row[prefix:]
        ids[n, width - len(own) :] = torch.tensor(own, dtype=torch.long)
        mask[n, width - len(own) :] = 1
    return ids, mask


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The key/value cache as a keyword: `cache` from transformers 5.2x (`past_key_values`
    warns there), `past_key_values` before it."""
    import inspect

    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


def prefix_cache(gen: Generation, prefix: Sequence[int], rows: int) -> Any:
    """A fresh DynamicCache holding `prefix` for `rows` rows; the prefix runs once per run
    (kept in gen.prefixes: the last one only, since a batch's shared prefix seldom changes)."""
    import torch
    from transformers import DynamicCache

    key = tuple(prefix)
    if key not in gen.prefixes:
        gen.prefixes.clear()
        filled = DynamicCache()  # filled in place by the forward pass
        gen.model(input_ids=torch.tensor([list(prefix)], device=gen.model.device), **with_cache(gen.model, filled))
        layers: list[Any] = list(filled.layers)  # full-attention layers: keys and values tensors
        gen.prefixes[key] = [(layer.keys, layer.values) for layer in layers]
    return DynamicCache(
        ddp_cache_data=[
            (k.expand(rows, -1, -1, -1).clone(), v.expand(rows, -1, -1, -1).clone()) for k, v in gen.prefixes[key]
        ]
    )


def padded_batch(batch: list[int], decoding: Decoding) -> list[int]:
    """With buckets, the batch filled up to its row bucket with copies of its last row (their
    outputs are dropped; a copy, not an empty row, so no row attends to nothing)."""
    if not decoding.buckets and not decoding.compiled:
        return batch
    return batch + [batch[-1]] * (bucket(len(batch), ROW_BUCKETS) - len(batch))


def generate_static(gen: Generation, rows: list[list[int]], batch: list[int], decoding: Decoding) -> list[list[int]]:
    """Greedy new tokens of one static batch through `model.generate` (eos, then padding after
    a row ends), with the batch's shared prefix read from its cache and shapes bucketed."""
    filled = padded_batch(batch, decoding)  # processors see one index per row, copies included
    batch_rows = [rows[i] for i in filled]
    width = max(len(r) for r in batch_rows)
    if decoding.buckets or decoding.compiled:
        width = bucket(width, WIDTH_BUCKETS)
    # a static (compiled) cache is allocated by generate itself: no prefix cache to hand it
    prefix = common_prefix(batch_rows) if decoding.prefix_cache and not decoding.compiled else 0
    ids, mask = layout(batch_rows, prefix, width, gen.pad_id)
    device = gen.model.device
    extra: dict[str, Any] = {}
    if prefix:
        extra.update(with_cache(gen.model, prefix_cache(gen, batch_rows[0][:prefix], len(batch_rows))))
    if decoding.compiled:
        extra["cache_implementation"] = "static"
    out = gen.model.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        max_new_tokens=gen.max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=gen.pad_id,
        eos_token_id=gen.eos,
        logits_processor=gen.processors(filled, width),
        stopping_criteria=gen.stopping,
        **extra,
    )
    return [row.tolist() for row in out[: len(batch), width:].cpu()]


def use_compile_cache(cache_dir: Path) -> None:
    """Compiled kernels and graphs kept on disk across runs, under the longdoc cache: inductor's
    FX-graph and autotune caches read TORCHINDUCTOR_CACHE_DIR (process-wide, set once per worker
    before the first compile; a user's own setting wins)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir / "inductor"))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
