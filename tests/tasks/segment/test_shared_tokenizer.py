"""Threads that share a worker's cached tokenizer segment as they would one at a time, and leave
the tokenizer as they found it (tasks.inference.worker: nothing mutates a shared tokenizer)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tasks.inference.models import load_tokenizer
from tasks.segment.segmenter import Segmenter
from tests.conftest import wordpiece_tokenizer

# Special-token lookalikes in the text: were the tokenizer's encode_special_tokens switch flipped
# by another thread, "[SEP]" would become one special id and the counts, hence the cuts, change.
DOCS_A = [
    ("The committee met on Tuesday [SEP] and discussed the budget. [CLS] Members asked questions!\n" * (20 + i))
    for i in range(4)
]
DOCS_B = [
    ("A remote control needs [MASK] buttons, a battery and a case.\n\n[PAD] The designer drew options. " * (25 + i))
    for i in range(4)
]
ROUNDS = 15


def _state(tokenizer: Any) -> tuple:
    backend = tokenizer.backend_tokenizer
    return (
        backend.encode_special_tokens,
        backend.truncation,
        backend.padding,
        tokenizer.model_max_length,
        tokenizer.padding_side,
        tokenizer.truncation_side,
        tokenizer.split_special_tokens,
    )


def _segments(tokenizer: Any, docs: list[str]) -> list:
    return Segmenter(tokenizer, "wp", 48, 8, overhead_tokens=2).split_many(docs)


def test_threads_sharing_a_cached_tokenizer_segment_as_one_at_a_time(tmp_path: Path) -> None:
    wordpiece_tokenizer().save_pretrained(tmp_path)
    shared = load_tokenizer(str(tmp_path))
    assert load_tokenizer(str(tmp_path)) is shared  # the worker's one cached tokenizer
    before = _state(shared)
    alone = {"a": _segments(shared, DOCS_A), "b": _segments(shared, DOCS_B)}
    assert alone["a"] != alone["b"] and all(len(spans) > 5 for spans in alone["a"] + alone["b"])

    barrier = threading.Barrier(3)
    results: dict[str, list] = {"a": [], "b": []}
    errors: list[BaseException] = []
    seen: set[tuple] = set()
    done = threading.Event()

    def segment(name: str, docs: list[str]) -> None:
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                results[name].append(_segments(load_tokenizer(str(tmp_path)), docs))
        except BaseException as exc:  # a borrow conflict inside the tokenizer would land here
            errors.append(exc)

    def watch() -> None:
        barrier.wait()
        while not done.is_set():
            seen.add(_state(shared))

    threads = [threading.Thread(target=segment, args=(n, d)) for n, d in (("a", DOCS_A), ("b", DOCS_B))]
    watcher = threading.Thread(target=watch)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()

    assert not errors
    assert results["a"] == [alone["a"]] * ROUNDS
    assert results["b"] == [alone["b"]] * ROUNDS
    assert seen <= {before}, "the shared tokenizer's settings changed while threads segmented"
    assert _state(shared) == before
