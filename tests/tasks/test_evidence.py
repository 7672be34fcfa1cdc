"""Evidence spans: inside their text, the text at their offsets, support that tells texts apart."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.evidence import MAX_UNIT_CHARS, Evidence, best_support, features, split_sentences, text_units

WORDS = ["budget", "remote", "control", "battery", "design", "meeting", "the", "a", "rubber", "会议", "预算", "遥控器"]
ENDS = [". ", "! ", "? ", "。", "\n", ", ", " "]
texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(ENDS)), min_size=1, max_size=120).map(
    lambda parts: "".join(w + e for w, e in parts)
)


@settings(max_examples=200, deadline=None)
@given(text=texts, offset=st.integers(0, 10_000), pick=st.integers(0, 10_000), length=st.integers(1, 80))
def test_a_span_lies_inside_the_text_and_is_the_text_at_its_offsets(text, offset, pick, length) -> None:
    document = "x" * offset + text + " tail"
    start = pick % len(text)
    sentence = text[start : start + length]
    support = Evidence(text, offset).support(sentence)
    assert offset <= support.char_start <= support.char_end <= offset + len(text)
    assert 0.0 <= support.score <= 1.0
    span = document[support.char_start : support.char_end]
    if support.score > 0:
        assert span == span.strip() and span  # whole units, trimmed
        assert features(sentence) & features(span)  # the span holds what the score counted


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_units_cover_the_text_in_order_and_stay_short(text) -> None:
    units = text_units(text)
    assert all(a < b <= len(text) and b - a <= MAX_UNIT_CHARS for a, b in units)
    assert all(units[k][1] <= units[k + 1][0] for k in range(len(units) - 1))
    covered = "".join(text[a:b] for a, b in units)
    assert "".join(text.split()) == "".join(covered.split())  # nothing but whitespace is left out


@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_a_unit_of_the_text_is_fully_supported_by_itself(text) -> None:
    evidence = Evidence(text)
    for a, b in evidence.units[:5]:
        if features(text[a:b]):
            assert evidence.support(text[a:b]).score == 1.0


TRANSCRIPT = (
    "Project Manager: Okay , so let's start with the budget .\n"
    "Marketing: The remote should cost at most twelve Euros fifty .\n"
    "Industrial Designer: We could use a rubber case and a kinetic battery .\n"
    "Project Manager: Right , and the logo goes on the front .\n"
)


def test_the_span_is_the_line_that_says_it() -> None:
    support = best_support("The designer proposed a rubber case with a kinetic battery.", TRANSCRIPT, 500)
    line = "Industrial Designer: We could use a rubber case and a kinetic battery ."
    start = TRANSCRIPT.index(line)
    assert (support.char_start - 500, support.char_end - 500) == (start, start + len(line))
    assert support.score > 0.6


def test_invented_content_has_little_support() -> None:
    assert best_support("Visit the website for a clear call-to-action and a free trial.", TRANSCRIPT).score < 0.25


ARTICLE = (
    "近年来，大语言模型的上下文长度不断增加。位置插值方法把旋转位置编码的位置缩放到训练时的范围内。"
    "这样模型只需少量微调就能处理更长的输入。另一方面，稀疏注意力降低了长序列的计算成本。"
)


def test_chinese_support_by_character_bigrams() -> None:
    support = best_support("位置插值通过缩放位置编码，让模型经少量微调处理更长输入。", ARTICLE)
    assert support.score > 0.5
    assert "位置插值" in ARTICLE[support.char_start : support.char_end]
    assert best_support("该公司第三季度的营业收入同比增长了百分之十。", ARTICLE).score < 0.25


def test_sentences_split_at_latin_and_chinese_ends() -> None:
    expected = ["第一句。", "第二句！", "Third one?", "Fourth.", "Fifth"]
    assert split_sentences("第一句。第二句！Third one? Fourth.\nFifth") == expected
    assert split_sentences("本文研究了地质.认为区内北部") == ["本文研究了地质.", "认为区内北部"]
    assert split_sentences("It costs 3.5 Euros.") == ["It costs 3.5 Euros."]
