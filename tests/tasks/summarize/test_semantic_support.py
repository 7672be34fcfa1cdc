"""Support by meaning with a tiny real embedding model: spans are the text's own windows."""

from __future__ import annotations

from tasks.evidence import MAX_SPAN_CHARS, Evidence
from tasks.inference.models import resolve
from tasks.summarize.semantic_support import MAX_WINDOW_UNITS, Embedder, SemanticEvidence, windows

TEXT = (
    "The committee met on Tuesday. The budget was approved by the board.\n"
    "Members asked for more detail on the remote control.\nThe meeting ended at noon."
)


def test_windows_are_runs_of_whole_units_within_the_span_limit() -> None:
    evidence = Evidence(TEXT + " " + "word " * 200)
    found = windows(evidence)
    assert {(i, i) for i in range(len(evidence.units))} <= set(found)
    for i, j in found:
        assert j - i < MAX_WINDOW_UNITS
        assert i == j or evidence.units[j][1] - evidence.units[i][0] <= MAX_SPAN_CHARS


def test_a_sentence_of_the_text_is_supported_by_its_own_unit(tiny_embedder) -> None:
    ref = resolve(tiny_embedder, "classifier")
    embedder = Embedder.load(ref.path, ref.max_input_tokens)
    semantic = SemanticEvidence(Evidence(TEXT, 1000), embedder)
    sentence = "The meeting ended at noon."
    (found,) = semantic.supports([sentence])
    assert found.score > 0.99
    assert TEXT[found.char_start - 1000 : found.char_end - 1000] == sentence
    assert semantic.supports([]) == []
    empty = SemanticEvidence(Evidence("", 5), embedder).supports(["Anything at all."])
    assert [(s.char_start, s.char_end, s.score) for s in empty] == [(5, 5, 0.0)]


def test_the_filter_keeps_the_better_support_of_an_english_segment_only(tiny_embedder) -> None:
    from tasks.evidence import SUPPORT_THRESHOLD
    from tasks.summarize.semantic_support import SEMANTIC_THRESHOLD
    from tasks.summarize.sentence_filter import filter_summary

    ref = resolve(tiny_embedder, "classifier")
    embedder = Embedder.load(ref.path, ref.max_input_tokens)
    summary = "The meeting ended at noon. A new CEO was appointed in Paris."
    checked = filter_summary(summary, TEXT, 1000, embedder=embedder)
    lexical_only = filter_summary(summary, TEXT, 1000)
    assert len(checked.kept) + sum(checked.removed.values()) == 2
    for kept in checked.kept:
        assert 1000 <= kept.char_start < kept.char_end <= 1000 + len(TEXT)
        assert kept.support >= max(SUPPORT_THRESHOLD, SEMANTIC_THRESHOLD)
    assert checked.kept[0].sentence == "The meeting ended at noon."
    assert checked.kept[0].support >= lexical_only.kept[0].support  # the better of the two
    # Chinese: the English embedding model has no vocabulary for it, the lexical measure decides
    article = "位置插值方法把旋转位置编码的位置缩放到训练时的范围内。稀疏注意力降低了长序列的计算成本。"
    zh = "稀疏注意力降低了长序列的计算成本。"
    assert filter_summary(zh, article, 0, embedder=embedder) == filter_summary(zh, article, 0)
