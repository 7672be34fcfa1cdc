"""Zero-shot classification on a decoder, and the fallback to it for text an embedding model
cannot represent: tiny random models (tests/conftest.py), real tokenizers and real tables."""

from __future__ import annotations

import json
import math

import pytest

from tasks.classify.classify import ClassifierSpec, label_texts
from tasks.classify.decoder import AnswerScores, make_frame, score_answers
from tasks.inference.engine import BatchLimits
from tasks.inference.models import load_model, load_tokenizer, resolve

LABELS = ("budget", "remote control", "speech")
ENGLISH = "The committee met on Tuesday to discuss the budget. Members asked for more detail!"
CHINESE = "本文研究了贵州东南部的地质构造特征，认为区内两条近东西向的基底剪切断裂带构成了本区的构造格局。"
TEXTS = [
    ENGLISH,
    "A remote control needs buttons, a battery and a case. " * 6,
    CHINESE,
    "Speech recognition models were trained on meetings.",
    CHINESE * 3,
]


def reference_sums(path: str, labels: tuple[str, ...], text: str, language: str) -> list[float]:
    """Each answer scored the plain way: its own prompt + answer row, no padding, no mask."""
    import torch

    tokenizer, model = load_tokenizer(path), load_model(path, "decoder", "cpu")
    frame = make_frame(tokenizer, labels, language)
    prompt = frame.before + tokenizer(text, add_special_tokens=False)["input_ids"] + frame.after
    sums = []
    with torch.inference_mode():
        for answer in frame.answers:
            logits = model(input_ids=torch.tensor([prompt + answer])).logits[0].float()
            log_probs = torch.log_softmax(logits, dim=-1)
            sums.append(sum(log_probs[len(prompt) - 1 + j, t].item() for j, t in enumerate(answer)))
    return sums


def test_scores_are_a_distribution_over_the_labels(tiny_llama) -> None:
    ref = resolve(tiny_llama, "classifier")
    for answer in score_answers(ref, LABELS, TEXTS, "cpu"):
        for reduce in ("mean", "sum"):
            probs = answer.probabilities(LABELS, reduce)  # type: ignore[arg-type]
            assert list(probs) == list(LABELS)
            assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
            assert all(0.0 < p < 1.0 for p in probs.values())
        assert all(s < 0 for s in answer.sums)  # log-probabilities of real tokens


def test_one_packed_pass_equals_separate_rows_in_any_order_and_batching(tiny_llama) -> None:
    ref = resolve(tiny_llama, "classifier")
    together = score_answers(ref, LABELS, TEXTS, "cpu")
    # small batches of rows of unequal length: left padding inside every batch
    small = score_answers(ref, LABELS, TEXTS[::-1], "cpu", limits=BatchLimits(token_budget=400, max_rows=2))[::-1]
    alone = [score_answers(ref, LABELS, [t], "cpu")[0] for t in TEXTS]
    for text, a, b, c in zip(TEXTS, together, small, alone, strict=True):
        expected = reference_sums(tiny_llama, LABELS, text, a.language)
        for got in (a, b, c):
            assert got.sums == pytest.approx(expected, rel=2e-5, abs=1e-4)  # float32 sums of ~-30
            assert got.probabilities(LABELS) == pytest.approx(a.probabilities(LABELS), abs=1e-5)
    assert [a.language for a in together] == ["en", "en", "zh", "en", "zh"]


def test_mean_and_sum_differ_only_by_answer_length() -> None:
    scores = AnswerScores([-2.0, -3.0], [1, 3], 10, 0, "en")
    assert scores.probabilities(("a", "b"), "sum")["a"] > 0.5  # -2.0 in all beats -3.0
    assert scores.probabilities(("a", "b"), "mean")["b"] > 0.5  # -1.0 per token beats -2.0


def test_chinese_prompt_shows_translated_default_labels(tiny_llama) -> None:
    from tasks.classify.classify import DEFAULT_LABELS

    tokenizer = load_tokenizer(tiny_llama)
    zh, en = make_frame(tokenizer, DEFAULT_LABELS, "zh"), make_frame(tokenizer, DEFAULT_LABELS, "en")
    assert "科学" in tokenizer.decode(zh.before + zh.after) or "科学" in tokenizer.decode(zh.answers[2])
    assert tokenizer.decode(en.answers[2]).startswith("science")
    ref = resolve(tiny_llama, "classifier")
    [answer] = score_answers(ref, DEFAULT_LABELS, [CHINESE], "cpu")
    assert list(answer.probabilities(DEFAULT_LABELS)) == list(DEFAULT_LABELS)  # stored under the given names


def test_fallback_labels_what_the_embedding_tokenizer_cannot_read(tiny_embedder, tiny_llama) -> None:
    spec = ClassifierSpec(resolve(tiny_embedder, "classifier"), LABELS, resolve(tiny_llama, "classifier"))
    results = label_texts(spec, TEXTS, "cpu")
    by = [r.labelled_by for r in results]
    assert by == [spec.own_id, spec.own_id, spec.fallback_id, spec.own_id, spec.fallback_id]
    assert results[0].unk_share == 0.0 and results[2].unk_share is not None and results[2].unk_share > 0.5
    assert results[2].language == "zh" and results[0].language is None
    for r in results:
        assert math.isclose(sum(r.scores.values()), 1.0, abs_tol=1e-6) and list(r.scores) == list(LABELS)
    # the fallback's scores are the decoder's own for that text
    direct = score_answers(spec.fallback, LABELS, [CHINESE], "cpu")[0]  # type: ignore[arg-type]
    assert results[2].scores == pytest.approx(direct.probabilities(LABELS), abs=1e-5)
    # without a fallback the embedding model labels everything
    alone = label_texts(ClassifierSpec(spec.ref, LABELS), TEXTS, "cpu")
    assert {r.labelled_by for r in alone} == {spec.own_id}
    # a threshold over every share: nothing falls back
    high = label_texts(ClassifierSpec(spec.ref, LABELS, spec.fallback, unk_threshold=1.0), TEXTS, "cpu")
    assert {r.labelled_by for r in high} == {spec.own_id}


def test_config_id_changes_with_the_fallback_and_its_threshold(tiny_embedder, tiny_llama, tiny_bart) -> None:
    from tasks.errors import ConfigError
    from tasks.run.plan import make_plan

    def plan(fallback: str | None, threshold: float = 0.1):
        return make_plan(tiny_embedder, list(LABELS), None, 64, 8, 8, None, fallback, threshold)

    none, with_llama, higher = plan(None), plan(tiny_llama), plan(tiny_llama, 0.3)
    assert len({none.config_id, with_llama.config_id, higher.config_id}) == 3
    assert plan(tiny_llama).config_id == with_llama.config_id
    assert with_llama.classifier and with_llama.classifier.model_id != higher.classifier.model_id  # type: ignore[union-attr]
    with pytest.raises(Exception, match="a classifier must be one of"):
        plan(tiny_bart)
    with pytest.raises(ConfigError, match="not a decoder"):
        plan(tiny_embedder)


def test_a_decoder_named_as_classifier_labels_every_segment(tiny_llama) -> None:
    from tasks.run.plan import make_plan

    plan = make_plan(tiny_llama, list(LABELS), None, 200, 8, 8, None, tiny_llama)
    assert plan.classifier and plan.classifier.fallback is None  # only an embedding model falls back
    assert plan.classifier.model_id == plan.classifier.own_id
    assert plan.classifier_segments and plan.classifier_segments.overhead_tokens > 20  # prompt and answers
    results = label_texts(plan.classifier, TEXTS, "cpu")
    assert {r.labelled_by for r in results} == {plan.classifier.model_id}
    assert [r.language for r in results] == ["en", "en", "zh", "en", "zh"]


def test_the_run_records_which_classifier_labelled_each_segment(tmp_path, tiny_embedder, tiny_llama) -> None:
    from storage.datasets import Store
    from tasks.run import steps
    from tasks.run.pipeline import run_shard
    from tasks.run.plan import make_plan

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "en.txt").write_text((ENGLISH + " ") * 12, encoding="utf-8")
    (tmp_path / "in" / "zh.txt").write_text(CHINESE * 4, encoding="utf-8")
    plan = make_plan(tiny_embedder, list(LABELS), None, 64, 8, 8, None, tiny_llama, 0.1)
    assert plan.classifier and plan.classifier.fallback_id
    store = Store(str(tmp_path / "data"))
    ingested = steps.step_ingest(store, [str(tmp_path / "in")], "r1")
    results = [run_shard(store, plan, shard, "r1") for shard in steps.step_shard(store, ingested.doc_ids, 10)]
    docs = {r["source_uri"].rsplit("/", 1)[-1]: r["doc_id"] for r in store.read("documents").to_pylist()}
    labels = store.read("segment_labels").to_pylist()
    by_doc: dict[str, set[str]] = {}
    for row in labels:
        by_doc.setdefault(row["doc_id"], set()).add(row["labelled_by"])
        assert row["model"] == plan.classifier.model_id
    assert by_doc[docs["en.txt"]] == {plan.classifier.own_id}
    assert by_doc[docs["zh.txt"]] == {plan.classifier.fallback_id}
    assert sum(r.classify.segments_fallback or 0 for r in results) == sum(  # type: ignore[union-attr]
        row["labelled_by"] == plan.classifier.fallback_id for row in labels
    )
    documents = {r["doc_id"]: r for r in store.read("document_results").to_pylist()}
    zh_segments = sum(row["doc_id"] == docs["zh.txt"] for row in labels)
    assert json.loads(documents[docs["zh.txt"]]["labelled_by"]) == {plan.classifier.fallback_id: zh_segments}
    assert list(json.loads(documents[docs["en.txt"]]["labelled_by"])) == [plan.classifier.own_id]
    assert documents[docs["zh.txt"]]["classifier"] == plan.classifier.model_id
