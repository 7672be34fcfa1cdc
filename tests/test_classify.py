"""Classification backends with tiny random models: distributions, order, batching, truncation."""

from __future__ import annotations

import pytest

from tasks.classify import ClassifierSpec, score_texts
from tasks.errors import ConfigError
from tasks.models import resolve

TEXTS = [
    "The committee met on Tuesday to discuss the budget.",
    "A remote control needs buttons.",
    "Speech recognition models were trained on meetings; the error rate fell by ten percent. " * 3,
    "Libraries lend books.",
]


def test_sequence_classifier_uses_its_own_labels(tiny_bert_classifier) -> None:
    spec = ClassifierSpec(resolve(tiny_bert_classifier, "classifier"), ())
    results = score_texts(spec, TEXTS, "cpu")
    assert len(results) == len(TEXTS)
    for scores, n_input, truncated in results:
        assert set(scores) == {"alpha", "beta", "gamma"}
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert n_input > 2 and truncated == 0


def test_batched_scores_equal_one_at_a_time(tiny_bert_classifier) -> None:
    spec = ClassifierSpec(resolve(tiny_bert_classifier, "classifier"), ())
    together = score_texts(spec, TEXTS, "cpu")
    alone = [score_texts(spec, [t], "cpu")[0] for t in TEXTS]
    for (a, _, _), (b, _, _) in zip(together, alone, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_zero_shot_scores_the_given_labels(tiny_embedder) -> None:
    spec = ClassifierSpec(resolve(tiny_embedder, "classifier"), ("budget", "remote", "speech"))
    results = score_texts(spec, TEXTS, "cpu")
    for scores, _, _ in results:
        assert list(scores) == ["budget", "remote", "speech"]
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert spec.model_id != ClassifierSpec(spec.ref, ("budget", "remote")).model_id
    with pytest.raises(ConfigError):
        ClassifierSpec(spec.ref, ("only-one",))


def test_overlong_input_is_cut_and_counted(tiny_embedder) -> None:
    spec = ClassifierSpec(resolve(tiny_embedder, "classifier"), ("a", "b"))
    [(_, n_input, truncated)] = score_texts(spec, ["word " * 300], "cpu")
    assert n_input == spec.ref.max_input_tokens == 96
    assert truncated > 0
