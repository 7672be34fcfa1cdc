"""Classification backends with tiny random models: distributions, order, batching, truncation."""

from __future__ import annotations

import pytest

from tasks.classify.classify import ClassifierSpec, score_texts
from tasks.errors import ConfigError
from tasks.inference.models import resolve

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


def test_streaming_in_chunks_gives_the_same_labels(tmp_path, tiny_bert_classifier) -> None:
    from storage.datasets import Store
    from tasks.classify.classify import classify_segments
    from tasks.inference.models import load_tokenizer
    from tasks.ingest.stage import ingest
    from tasks.segment.segment import segment_documents
    from tasks.segment.segmenter import Segmenter

    (tmp_path / "in").mkdir()
    for n, text in enumerate(TEXTS):
        (tmp_path / "in" / f"{n}.txt").write_text(text * 5, encoding="utf-8")
    spec = ClassifierSpec(resolve(tiny_bert_classifier, "classifier"), ())
    seg = Segmenter(load_tokenizer(tiny_bert_classifier), "bert", 32, 4, overhead_tokens=2)
    labels = {}
    for chunk_rows in (3, 1000):
        store = Store(str(tmp_path / f"data{chunk_rows}"))
        doc_ids = ingest(store, [str(tmp_path / "in")], "r").doc_ids
        segment_documents(store, doc_ids, seg, "r-seg")
        seen: list[tuple[int, int]] = []
        counts = classify_segments(
            store,
            spec,
            doc_ids,
            seg.segmenter_id,
            "r-lab",
            "cpu",
            lambda d, t, seen=seen: seen.append((d, t)),
            chunk_rows,
        )
        n = store.read("segments").num_rows
        assert counts["segments_classified"] == n and seen[-1] == (n, n)
        labels[chunk_rows] = sorted((r["segment_id"], r["label"]) for r in store.read("segment_labels").to_pylist())
        again = classify_segments(store, spec, doc_ids, seg.segmenter_id, "r-lab2", "cpu", None, chunk_rows)
        assert again["segments_classified"] == 0
    assert labels[3] == labels[1000]
