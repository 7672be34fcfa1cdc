"""Per-worker state (tasks.inference.worker): the garbage-collection policy, model caches kept
until released, plain tokenizer copies that encode text as text."""

from __future__ import annotations

import gc
import weakref

import pytest

from tasks.inference import POLICY, load_model, load_tokenizer, plain_backend, prepare_worker, release_models


class _Node:
    pass


def test_prepare_worker_collects_young_cycles_then_freezes_what_is_alive() -> None:
    alive = [[i] for i in range(2000)]
    cycle = _Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    dead = weakref.ref(cycle)
    del cycle
    before = gc.get_freeze_count()
    prepare_worker()
    assert dead() is None, "young cyclic garbage is collected before the freeze"
    assert gc.get_freeze_count() >= before + len(alive)


def test_the_policy_applies_at_each_call_and_can_be_off(
    monkeypatch: pytest.MonkeyPatch, tiny_bert_classifier: str
) -> None:
    alive = [[i] for i in range(2000)]
    before = gc.get_freeze_count()
    prepare_worker()  # the pipeline calls it at every stage's start: each call freezes what is alive
    assert gc.get_freeze_count() >= before + len(alive)

    monkeypatch.setattr(POLICY, "freeze_garbage", False)
    release_models()
    before = gc.get_freeze_count()
    prepare_worker()
    load_tokenizer(tiny_bert_classifier)  # a load applies the policy too
    assert gc.get_freeze_count() == before


def test_models_are_kept_per_worker_until_released(tiny_bert_classifier: str) -> None:
    tokenizer = load_tokenizer(tiny_bert_classifier)
    model = load_model(tiny_bert_classifier, "sequence-classification", "cpu")
    plain = plain_backend(tokenizer)
    assert load_tokenizer(tiny_bert_classifier) is tokenizer
    assert load_model(tiny_bert_classifier, "sequence-classification", "cpu") is model
    assert plain_backend(tokenizer) is plain

    release_models()
    again = load_tokenizer(tiny_bert_classifier)
    assert again is not tokenizer
    assert load_model(tiny_bert_classifier, "sequence-classification", "cpu") is not model
    assert plain_backend(again) is not plain


def test_a_plain_copy_encodes_as_the_per_call_switch_did_and_leaves_the_tokenizer_alone(
    tiny_bert_classifier: str,
) -> None:
    tokenizer = load_tokenizer(tiny_bert_classifier)
    backend = tokenizer.backend_tokenizer
    state = (backend.encode_special_tokens, backend.truncation, backend.padding, backend.to_str())
    texts = ["The committee [SEP] met [CLS] on Tuesday.", "[PAD] " * 300, ""]
    plain = {
        special: [e.ids for e in plain_backend(tokenizer).encode_batch(texts, add_special_tokens=special)]
        for special in (True, False)
    }
    assert (backend.encode_special_tokens, backend.truncation, backend.padding, backend.to_str()) == state
    assert len(plain[False][1]) > 300  # "[PAD]" is text here, never the one special id, and nothing is cut
    for special, ids in plain.items():  # transformers' per-call switch (it sets it on the shared tokenizer)
        assert ids == tokenizer(texts, add_special_tokens=special, split_special_tokens=True)["input_ids"]


def test_cpu_threads_follow_the_policy_else_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from tasks.inference.worker import cpu_threads

    monkeypatch.setattr(POLICY, "cpu_threads", 3)
    assert cpu_threads() == 3
    monkeypatch.setattr(POLICY, "cpu_threads", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))  # only this process: both cores
    assert cpu_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 1.0, 1.0))  # one more busy process: one core
    assert cpu_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 30.0, 30.0))  # never fewer than one
    assert cpu_threads() == 1
