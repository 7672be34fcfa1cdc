"""The extractive merge in a language written without spaces: sentences compared by character
pairs (a Chinese clause is one \\w+ run) and joined without spaces."""

from __future__ import annotations

from tasks.aggregate.merge import merge_extractive, select_sentences

SUMMARIES = [
    "理事会批准了图书馆的预算。会议还讨论了停车问题。",
    "图书馆的预算获得理事会批准。一只猫走进了会场。",
    "预算用于购买新书和延长开放时间。",
]


def _chars(text: str) -> int:
    return len(text)


def test_chinese_near_duplicates_are_told_apart_only_by_character_pairs() -> None:
    merged = select_sentences(SUMMARIES, budget=200, count=_chars, language="zh")
    # the second summary's first sentence says the first one's again in other words: one kept
    assert ("理事会批准了图书馆的预算。" in merged) != ("图书馆的预算获得理事会批准。" in merged)
    assert " " not in merged and merged.endswith("。")
    # as words, each clause is one token: nothing looks alike and both near-duplicates stay
    as_words = select_sentences(SUMMARIES, budget=200, count=_chars, language="en")
    assert "理事会批准了图书馆的预算。" in as_words and "图书馆的预算获得理事会批准。" in as_words


def test_the_most_central_chinese_sentence_is_chosen_first() -> None:
    # 13 characters: room for one sentence; the budget sentence shares most pairs with the rest
    assert select_sentences(SUMMARIES, budget=14, count=_chars, language="zh") in (
        "理事会批准了图书馆的预算。",
        "图书馆的预算获得理事会批准。",
    )


def test_merge_uses_each_documents_language() -> None:
    merged = merge_extractive({"zh": SUMMARIES, "en": ["A vote passed.", "A storm hit."]}, _chars, 200, {"zh": "zh"})
    assert " " not in merged["zh"][0]
    assert merged["en"] == ("A vote passed. A storm hit.", 1)
