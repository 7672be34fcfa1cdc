"""Per-worker state, named in one place: what a worker process keeps while it runs shards, and
how it treats Python's garbage collector. Reads and writes no table.

A worker is one process that runs shards: the CLI's own process, a Prefect worker's flow-run
process, a Dask worker; a thread-pool task runner's threads share their process's state.

- Model caches. `load_tokenizer(path)` and `load_model(path, kind, device)`
  (tasks.inference.models) are `per_worker`: each loads once per worker and is kept until the
  process ends or `release_models()`. They decide how long a worker holds its models' memory.
  Threads share the cached objects, so nothing sets anything on a cached tokenizer or model
  after loading (transformers' per-call split_special_tokens, truncation and padding are set on
  the shared tokenizer: `load_tokenizer` settles the last two once, `plain_backend` replaces the
  first).
- Plain tokenizers. `plain_backend(tokenizer)`: the worker's private copy of a tokenizer's
  backend that encodes text only (no special tokens recognised, no truncation, no padding),
  made once per tokenizer and kept as long as that tokenizer lives; the segmenter encodes with
  it instead of flipping switches on the shared one.
- CPU threads (`POLICY.cpu_threads`, `cpu_threads()`): set for torch when a model is loaded for
  the CPU, from the cores idle at that moment unless the policy names a number.
- Garbage-collection policy (`POLICY`, `prepare_worker()`, `freeze_garbage()`): young cyclic
  garbage collected, then everything alive frozen out of later collections, when a model or
  tokenizer is loaded and when a shard's stages start (BENCHMARKS.md: a full collection walks
  ~660,000 objects in 0.45 s once models are loaded, and fell inside a stage in half the flow
  runs measured).
"""

from __future__ import annotations

import functools
import gc
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class WorkerPolicy:
    """The worker's process policy; one instance, `POLICY`."""

    freeze_garbage: bool = True  # False measures the cost of full collections (benchmarks)
    # torch's threads on a CPU; None: the cores idle when the first model loads (`cpu_threads`).
    cpu_threads: int | None = None


POLICY = WorkerPolicy()

_CACHES: list[functools._lru_cache_wrapper[Any]] = []
_PLAIN: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_PLAIN_LOCK = threading.Lock()


def per_worker(loader: Callable[..., T]) -> functools._lru_cache_wrapper[T]:
    """`functools.cache`, registered as per-worker state so that `release_models()` clears it."""
    cached = functools.cache(loader)
    _CACHES.append(cached)
    return cached


def release_models() -> None:
    """Forget every model and tokenizer this worker keeps (the next use loads them again): for
    tests and for long-lived workers that move on to other models."""
    for cache in _CACHES:
        cache.cache_clear()
    with _PLAIN_LOCK:
        _PLAIN.clear()


def freeze_garbage() -> None:
    """Leave every object alive now out of all later garbage collections: the libraries, the
    models and tokenizers, Prefect's run state, which live as long as a run or the process.
    Young cyclic garbage is collected first (milliseconds); older cyclic garbage alive now is
    kept until the process ends, the price of the freeze. Called when a model or tokenizer is
    loaded and by `prepare_worker()`; does nothing when `POLICY.freeze_garbage` is off."""
    if POLICY.freeze_garbage:
        gc.collect(1)
        gc.freeze()


def cpu_threads() -> int:
    """How many threads torch computes with on a CPU: `POLICY.cpu_threads` when set, else the
    cores not busy with other processes (the 1-minute load average less this process's own
    one). Measured on 2 cores with Qwen2.5-Coder-0.5B (BENCHMARKS.md): two threads beside a
    busy process decode at a fraction of one thread's speed (OpenMP threads wait on each other
    for a core), while on an idle machine two threads prefill faster than one."""
    import os

    if POLICY.cpu_threads:
        return POLICY.cpu_threads
    cores = os.cpu_count() or 1
    busy = max(0.0, os.getloadavg()[0] - 1.0)
    return max(1, min(cores, cores - round(busy)))


def prepare_worker() -> None:
    """Set this worker up before a shard's stages run on it: the garbage-collection policy
    (`freeze_garbage`). Cheap when called again; the model caches fill on first use."""
    freeze_garbage()


def plain_backend(tokenizer: Any) -> Any:
    """A `tokenizers.Tokenizer` copy of `tokenizer`'s backend that encodes text as text: a
    special token's spelling is split like any other text, nothing truncated or padded. Made
    once per tokenizer per worker; the shared tokenizer is only read."""
    with _PLAIN_LOCK:
        plain = _PLAIN.get(tokenizer)
    if plain is not None:
        return plain
    from tokenizers import Tokenizer

    plain = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    plain.no_truncation()
    plain.no_padding()
    plain.encode_special_tokens = True
    with _PLAIN_LOCK:
        return _PLAIN.setdefault(tokenizer, plain)
