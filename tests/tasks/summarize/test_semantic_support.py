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
