"""The inference engine: token-budget batches, dynamic padding, out-of-memory back-off.

Inputs are sorted by length so a batch holds rows of similar length (little padding); a batch
never holds more than `token_budget` padded tokens (rows x longest row) nor `max_rows` rows,
except a single row longer than the budget, which runs alone. Results come back in input order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tasks.errors import Cancelled

R = TypeVar("R")
Progress = Callable[[int, int], None]


class Cancellation:
    """A request to stop: made by a signal handler, seen by long loops between their steps
    (batches, decode steps). Python cannot stop a thread from outside, so a thread that runs
    inference must look for itself, or a SIGTERM waits for the whole shard to finish."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "interrupted"

    def request(self, reason: str = "interrupted") -> None:
        self.reason = reason
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled once a stop was requested."""
        if self._event.is_set():
            raise Cancelled(self.reason)


# The process's one cancellation: requested only by the CLI's SIGTERM/SIGINT handler
# (flows/exits.py), read by the inference loops here and in tasks/summarize/summarize.py.
CANCELLATION = Cancellation()


@dataclass(frozen=True)
class BatchLimits:
    token_budget: int
    max_rows: int

    @staticmethod
    def for_device(device: str, generation: bool) -> BatchLimits:
        if device.startswith("cuda"):
            # Decoding a small model is launch-bound: 128 rows gave 1.8x the output tokens/s
            # of 64 on an H100 (BENCHMARKS.md); out-of-memory back-off covers bigger models.
            return BatchLimits(163840, 128) if generation else BatchLimits(65536, 512)
        return BatchLimits(12288 if generation else 16384, 8 if generation else 64)


def plan_batches(lengths: Sequence[int], limits: BatchLimits) -> list[list[int]]:
    """Indices grouped into batches, longest first, each within the limits."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, lengths[i])
        if current and (width * (len(current) + 1) > limits.token_budget or len(current) >= limits.max_rows):
            batches.append(current)
            current, width = [], lengths[i]
        current.append(i)
        longest = width
    if current:
        batches.append(current)
    return batches


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, left: bool) -> tuple[Any, Any]:
    """Input ids and attention mask padded to the longest row of this batch only."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, row in enumerate(rows):
        if left:
            ids[n, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[n, width - len(row) :] = 1
        else:
            ids[n, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[n, : len(row)] = 1
    return ids, mask


def inference(device: str) -> Any:
    """`torch.inference_mode`, and on CUDA attention without cuDNN's SDPA backend: cuDNN builds
    an execution plan for every new batch shape (0.1-0.25 s each on an H100, measured), and
    token-budget batches seldom repeat a shape; flash and memory-efficient kernels need no plan."""
    import contextlib

    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if device.startswith("cuda"):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        stack.enter_context(sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]))
    return stack


def shifted(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """Progress of one chunk reported as progress of the whole run."""
    if progress is None:
        return None
    return lambda done, _chunk_total: progress(done_before + done, total)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _run_with_backoff(run: Callable[[list[int]], list[R]], batch: list[int]) -> list[R]:
    """Run a batch; on out-of-memory, halve it and run both halves (each row exactly once)."""
    try:
        return run(batch)
    except RuntimeError as exc:
        if not is_out_of_memory(exc) or len(batch) == 1:
            raise
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = len(batch) // 2
    return _run_with_backoff(run, batch[:half]) + _run_with_backoff(run, batch[half:])


def run_batched(
    lengths: Sequence[int],
    run: Callable[[list[int]], list[R]],
    limits: BatchLimits,
    progress: Progress | None = None,
    cancel: Cancellation = CANCELLATION,
) -> list[R]:
    """Call `run` on batches of indices; returns one result per index, in input order.
    Cancelled between batches, and after the last one (a batch cut short by the request is
    not a result)."""
    results: dict[int, R] = {}
    done = 0
    for batch in plan_batches(lengths, limits):
        cancel.check()
        outputs = _run_with_backoff(run, batch)
        cancel.check()
        for index, result in zip(batch, outputs, strict=True):
            results[index] = result
        done += len(batch)
        if progress:
            progress(done, len(lengths))
    return [results[i] for i in range(len(lengths))]
