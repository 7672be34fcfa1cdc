"""Continuous batching: a decode loop of its own that refills rows as they finish.

transformers' `generate_batch` runs only its own logits processors, and the summaries need the
repeat ban, so the loop is ours: a DynamicCache whose rows are dropped when they end (eos or
max_new_tokens) and joined by freshly prefilled rows (left-padded to a common length, masked).
Greedy tokens are the ones `generate` picks: same processors on the same generated tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.inference.decoding import Generation, common_prefix, layout, prefix_cache, with_cache
from tasks.inference.engine import Progress, is_out_of_memory


def _pick(gen: Generation, logits: Any, indices: list[int], generated: list[list[int]]) -> Any:
    """The next token of each row: processors applied per group of rows whose generated tokens
    are equally long (the processors see only generated tokens, from start 0), then argmax."""
    import torch

    scores = logits.float()
    groups: dict[int, list[int]] = {}
    for position, tokens in enumerate(generated):
        groups.setdefault(len(tokens), []).append(position)
    for length, positions in groups.items():
        at = torch.tensor(positions, device=scores.device)
        so_far = torch.tensor([generated[p] for p in positions], dtype=torch.long, device=scores.device)
        so_far = so_far.reshape(len(positions), length)
        part = scores[at]
        for processor in gen.processors([indices[p] for p in positions], 0):
            part = processor(so_far, part)
        scores[at] = part
    return scores.argmax(-1)


def _prefill(gen: Generation, rows: list[list[int]], use_prefix: bool) -> tuple[Any, Any, Any]:
    """Cache, attention mask and last-position logits of new rows (shared prefix from its cache)."""
    prefix = common_prefix(rows) if use_prefix else 0
    ids, mask = layout(rows, prefix, max(len(r) for r in rows), gen.pad_id)
    device = gen.model.device
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = prefix_cache(gen, rows[0][:prefix], len(rows)) if prefix else None
    if cache is None:
        from transformers import DynamicCache

        cache = DynamicCache()
    out = gen.model(
        input_ids=ids[:, prefix:],
        attention_mask=mask,
        position_ids=positions[:, prefix:],
        **with_cache(gen.model, cache),
    )
    return cache, mask, out.logits[:, -1]


def _join(cache: Any, mask: Any, new_cache: Any, new_mask: Any) -> tuple[Any, Any]:
    """Two caches side by side in the batch: the shorter left-padded (masked) to the longer."""
    import torch
    import torch.nn.functional as F

    width = max(mask.shape[1], new_mask.shape[1])

    def widen(t: Any, dim_from_end: int) -> Any:
        missing = width - t.shape[-dim_from_end]
        if not missing:
            return t
        pad = [0, 0] * (dim_from_end - 1) + [missing, 0]
        return F.pad(t, pad)

    for old, new in zip(cache.layers, new_cache.layers, strict=True):
        old.keys = torch.cat([widen(old.keys, 2), widen(new.keys, 2)])
        old.values = torch.cat([widen(old.values, 2), widen(new.values, 2)])
    return cache, torch.cat([widen(mask, 1), widen(new_mask, 1)])


def generate_continuous(
    gen: Generation,
    rows: list[list[int]],
    order: list[int],
    slots: int,
    use_prefix: bool,
    finished: Callable[[int, list[int]], None],
) -> None:
    """Greedy new tokens of every row in `order`, at most `slots` rows at a time; rows are
    refilled once half the slots are free. `finished(index, tokens)` gets each row as it ends
    (tokens up to and including eos). Checks the cancellation at every step."""
    import torch

    waiting = list(order)
    active: list[int] = []
    generated: list[list[int]] = []
    cache: Any = None
    mask: Any = None
    last: Any = None
    while waiting or active:
        gen.cancel.check()
        if waiting and len(active) <= slots // 2:
            take, waiting = waiting[: slots - len(active)], waiting[slots - len(active) :]
            new_cache, new_mask, logits = _prefill(gen, [rows[i] for i in take], use_prefix)
            tokens = _pick(gen, logits, take, [[] for _ in take])
            if cache is None:
                cache, mask, last = new_cache, new_mask, tokens
            else:
                cache, mask = _join(cache, mask, new_cache, new_mask)
                last = torch.cat([last, tokens])
            fresh = range(len(active), len(active) + len(take))
            active += take
            generated += [[] for _ in take]
        else:
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = mask.sum(-1, keepdim=True) - 1
            out = gen.model(
                input_ids=last[:, None], attention_mask=mask, position_ids=positions, **with_cache(gen.model, cache)
            )
            last = _pick(gen, out.logits[:, -1], active, generated)
            fresh = range(len(active))
        keep = [p for p in range(len(active)) if p not in fresh]
        tokens_now = last.tolist()
        for position in fresh:
            token = tokens_now[position]
            generated[position].append(token)
            if token in gen.eos or len(generated[position]) >= gen.max_new_tokens:
                finished(active[position], generated[position])
            else:
                keep.append(position)
        keep.sort()
        if len(keep) < len(active):
            at = torch.tensor(keep, dtype=torch.long, device=last.device)
            cache.batch_select_indices(at)
            mask, last = mask[at], last[at]
            active = [active[p] for p in keep]
            generated = [generated[p] for p in keep]
            if not active:
                cache = mask = last = None


def run_continuous(
    gen: Generation, rows: list[list[int]], slots: int, use_prefix: bool, progress: Progress | None = None
) -> list[list[int]]:
    """New tokens of every row, in input order; longest rows first; on out-of-memory the slots
    are halved and the rows not yet finished run again (each row's result kept once)."""
    done: dict[int, list[int]] = {}

    def finished(index: int, tokens: list[int]) -> None:
        done[index] = tokens
        if progress:
            progress(len(done), len(rows))

    while True:
        order = sorted((i for i in range(len(rows)) if i not in done), key=lambda i: (-len(rows[i]), i))
        try:
            generate_continuous(gen, rows, order, slots, use_prefix, finished)
            break
        except RuntimeError as exc:
            if not is_out_of_memory(exc) or slots == 1:
                raise
            slots //= 2
    gen.cancel.check()
    return [done[i] for i in range(len(rows))]
