"""Model resolution: kinds detected from configuration, roles checked, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import ModelError
from tasks.models import detect_kind, resolve


def test_kinds_are_detected_from_configuration(tiny_bert_classifier, tiny_embedder, tiny_bart, tiny_llama) -> None:
    assert detect_kind(Path(tiny_bert_classifier)) == "sequence-classification"
    assert detect_kind(Path(tiny_embedder)) == "embedding"
    assert detect_kind(Path(tiny_bart)) == "seq2seq"
    assert detect_kind(Path(tiny_llama)) == "decoder"


def test_roles_are_checked(tiny_bert_classifier, tiny_llama) -> None:
    assert resolve(tiny_bert_classifier, "classifier").kind == "sequence-classification"
    assert resolve(tiny_llama, "summarizer").max_input_tokens == 512
    with pytest.raises(ModelError, match=r"a summarizer must be one of"):
        resolve(tiny_bert_classifier, "summarizer")
    with pytest.raises(ModelError, match="a classifier must be one of"):
        resolve(tiny_llama, "classifier")


def test_unknown_models_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        resolve("no-such-org/no-such-model-xyz", "classifier")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve(str(tmp_path / "empty"), "classifier")


def test_fingerprint_changes_with_the_model(tiny_bert_classifier, tiny_embedder) -> None:
    a = resolve(tiny_bert_classifier, "classifier")
    b = resolve(tiny_embedder, "classifier")
    assert a.fingerprint != b.fingerprint
    assert resolve(tiny_bert_classifier, "classifier").fingerprint == a.fingerprint


def test_default_classifier_is_the_packaged_minilm() -> None:
    ref = resolve("default", "classifier")
    assert ref.kind == "embedding"
    assert ref.max_input_tokens == 256  # trained length, not the 512 positions
