"""Evaluation metrics against values computed by hand, and the extractive merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.aggregate.merge import select_sentences
from tasks.scoring.scoring import (
    Prediction,
    Reference,
    accuracy,
    macro_f1,
    metric_rows,
    read_references,
    rouge,
    side_by_side,
)


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold, pred = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    assert accuracy(gold, pred) == 0.5
    # a: tp 1, fp 0, fn 1 -> 2/3; b: tp 1, fp 2, fn 0 -> 1/2; c: tp 0 -> 0
    assert macro_f1(gold, pred) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    # a class only ever predicted still counts (as 0): d: tp 0
    assert macro_f1(["a", "a"], ["a", "d"]) == pytest.approx((2 / 3 + 0) / 2)


def test_rouge_by_hand_english_stemmed_and_cjk() -> None:
    # the cat sat on the mat / the cat lay on the mat: 5 of 6 unigrams, 3 of 5 bigrams, LCS 5
    english = rouge(["the cat sat on the mat"], ["the cat lay on the mat"])
    assert english == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6})
    # Porter stems words over three letters: dogs -> dog, running / runs -> run
    assert rouge(["Dogs running."], ["dog runs"])["rouge1"] == pytest.approx(1.0)
    # CJK scored a character at a time: 4 of 5 characters, 2 of 4 bigrams, LCS 4
    cjk = rouge(["東京で会議"], ["東京の会議"])
    assert cjk == pytest.approx({"rouge1": 0.8, "rouge2": 0.5, "rougeL": 0.8})
    both = rouge(["the cat sat on the mat", "東京で会議"], ["the cat lay on the mat", "東京の会議"])
    assert both["rouge2"] == pytest.approx((0.6 + 0.5) / 2)


def _refs_and_predictions() -> tuple[list[Reference], dict[str, Prediction]]:
    refs = [
        Reference("d1", "Ann: hi", "x", "the cat sat on the mat"),
        Reference("d2", "text two", "y", None),
        Reference("d3", "text three", "y", "a b c d"),
        Reference("d4", "not processed", "x", "zzz"),
    ]
    predictions = {
        # d1: three segments; the document is right, the first segment wrong
        "d1": Prediction("x", "y", 3, "the cat lay on the mat", "Ann: the dog", 3),
        # d2: one segment, both right, no reference summary
        "d2": Prediction("y", "y", 1, "two", "two", 1),
        # d3: two segments; the document wrong, the first segment right
        "d3": Prediction("x", "y", 2, "a b c d", "a b", 2),
    }
    return refs, predictions


def test_metric_rows_by_hand() -> None:
    refs, predictions = _refs_and_predictions()
    rows = {
        (r["metric"], r["system"], r["subset"]): (r["value"], r["n_documents"]) for r in metric_rows(refs, predictions)
    }
    assert rows["accuracy", "document", "all"] == (pytest.approx(2 / 3), 3)
    assert rows["accuracy", "first_segment", "all"] == (pytest.approx(2 / 3), 3)
    assert rows["accuracy", "document", "multi_segment"] == (0.5, 2)  # d1, d3
    # multi, document: gold x,y pred x,x -> x: 2/3, y: 0; first: pred y,y -> x: 0, y: 2/3
    assert rows["macro_f1", "document", "multi_segment"][0] == pytest.approx(1 / 3)
    assert rows["macro_f1", "first_segment", "multi_segment"][0] == pytest.approx(1 / 3)
    # ROUGE-1 over d1 and d3 (d2 has no reference): document 5/6 and 1; first segment
    # "Ann: the dog" vs 6 words: P 1/3, R 1/6 -> F 2/9; "a b" vs "a b c d": P 1, R 1/2 -> F 2/3
    assert rows["rouge1", "document", "all"] == (pytest.approx((5 / 6 + 1) / 2), 2)
    assert rows["rouge1", "first_segment", "multi_segment"][0] == pytest.approx((2 / 9 + 2 / 3) / 2)
    # "Ann: the dog" copies the source's speaker tag: 1 of the 3 first-segment summaries
    assert rows["unclean_summaries", "first_segment", "all"] == (pytest.approx(1 / 3), 3)
    assert rows["unclean_summaries", "document", "all"] == (0.0, 3)
    table = side_by_side(metric_rows(refs, predictions))
    assert table[0] == ("accuracy", "all", 3, pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert [t[1] for t in table] == sorted((t[1] for t in table), key=lambda s: s != "all")


def test_references_from_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [
        {"id": 1, "text": "first text", "label": "a", "summary": "one"},
        {"id": 2, "text": "second text", "label": "b"},
        {"id": 3, "text": "first text", "label": "c"},  # the same text is one document: first wins
        {"id": 4, "text": "   "},
    ]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    for path in (jsonl, parquet):
        refs = read_references(str(path))
        assert [(r.text, r.label, r.summary) for r in refs] == [("first text", "a", "one"), ("second text", "b", None)]


def test_a_file_without_records_is_an_error(tmp_path: Path) -> None:
    from tasks.errors import LongdocError

    text = tmp_path / "notes.txt"
    text.write_text("just text", encoding="utf-8")
    with pytest.raises(LongdocError, match="no records"):
        read_references(str(text))


def test_extractive_merge_keeps_central_sentences_in_order_within_budget() -> None:
    summaries = [
        "The council debated the library budget. Parking was mentioned.",
        "The library budget was approved by the council. A cat walked in.",
        "Council members praised the library budget.",
    ]

    def count(s: str) -> int:
        return len(s.split())

    # centrality (cosine of word counts, words over two letters, to all other sentences):
    # "The library budget was approved..." 0.80 > "The council debated..." 0.75 > "Council members
    # praised..." 0.66 > "Parking..." 0.08 > "A cat..." 0; the two runners-up are near-duplicates
    # of the first (cosine 0.82 and 0.68); a sentence costs its words + 1.
    approved = "The library budget was approved by the council."
    assert select_sentences(summaries, budget=10, count=count) == approved
    assert select_sentences(summaries, budget=30, count=count) == f"Parking was mentioned. {approved} A cat walked in."
    # lead: first sentences in order (7, then 9 does not fit in 12), then second sentences (4)
    lead = select_sentences(summaries, budget=12, count=count, mode="lead")
    assert lead == "The council debated the library budget. Parking was mentioned."
    assert select_sentences([], budget=10, count=count) == ""


def test_evaluate_on_a_file_without_records_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from flows.cli import main

    text = tmp_path / "notes.txt"
    text.write_text("just text", encoding="utf-8")
    assert main(["evaluate", str(text), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("longdoc: error:") and "no records" in err


def test_extractive_merge_per_document() -> None:
    from tasks.aggregate.merge import merge_extractive

    merged = merge_extractive(
        {
            "one": ["Only this.  Kept as it is."],
            "two": ["The vote passed narrowly.", "A storm hit the coast."],
            "none": [],
        },
        count=lambda s: len(s.split()),
        budget=100,
    )
    assert merged == {
        "one": ("Only this.  Kept as it is.", 0),
        "two": ("The vote passed narrowly. A storm hit the coast.", 1),
    }
