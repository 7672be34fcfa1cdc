"""The language of a text by its script, and the instruction each language gets."""

from __future__ import annotations

import pytest

from tasks import language
from tasks.language import INSTRUCTIONS, detect, detect_language, instruction, prompt_fingerprint, script_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The committee met on Tuesday to discuss the budget.", "en"),
        ("Émile écrivit des notes naïves au café.", "en"),  # Latin script: the English instruction
        ("近年来，语言模型在自然语言处理领域取得了巨大的突破。", "zh"),
        ("東京で会議がありました。予算について話しました。", "ja"),  # Han with Kana is Japanese
        ("회의는 화요일에 열렸습니다.", "ko"),
        ("Комитет собрался во вторник.", "ru"),
        ("اجتمعت اللجنة يوم الثلاثاء.", "ar"),
        ("समिति मंगलवार को मिली।", "hi"),
        ("Η επιτροπή συνεδρίασε την Τρίτη.", "el"),
        ("הוועדה התכנסה ביום שלישי.", "he"),
        ("คณะกรรมการประชุมในวันอังคาร", "th"),
        ("2024-05-01 12:00 — 3.14 % !!", "en"),  # no letters at all: the default
        ("", "en"),
    ],
)
def test_detect_by_script(text: str, expected: str) -> None:
    assert detect(text) == expected


def test_the_most_frequent_script_wins_over_a_few_foreign_words() -> None:
    text = "大语言模型(LLMs)的上下文长度不断拓展，GPT-4 和 Claude 都支持更长的上下文窗口。"
    assert detect(text) == "zh"
    assert detect("The model 上下文 handles long contexts well in most of the tests we ran.") == "en"


def test_script_of_letters_and_non_letters() -> None:
    assert [script_of(c) for c in "aЖ中カ한1,。 "] == [
        "Latin",
        "Cyrillic",
        "Han",
        "Kana",
        "Hangul",
        None,
        None,
        None,
        None,
    ]


def test_chinese_text_gets_the_chinese_instruction_and_unlisted_languages_english() -> None:
    assert "请用两三句话概括上文" in instruction("zh").user
    # the English wording, but no English words prefilled into a Russian answer
    assert (instruction("ru").system, instruction("ru").user) == (INSTRUCTIONS["en"].system, INSTRUCTIONS["en"].user)
    assert instruction("ru").lead == "" and INSTRUCTIONS["en"].lead and INSTRUCTIONS["zh"].lead.startswith("主要")
    assert "{text}" in instruction("zh").user and "{text}" in instruction("en").user


def test_the_prompt_fingerprint_changes_with_any_instruction(monkeypatch: pytest.MonkeyPatch) -> None:
    before = prompt_fingerprint()
    changed = dict(INSTRUCTIONS, zh=language.Instruction("系统", "{text}\n概括。"))
    monkeypatch.setattr(language, "INSTRUCTIONS", changed)
    assert prompt_fingerprint() != before


def test_classifier_prompt_language_is_chinese_or_english() -> None:
    assert detect_language("本文研究了贵州东南部的地质构造特征。") == "zh"
    assert detect_language("The committee met on Tuesday to discuss the budget.") == "en"
    assert detect_language("") == "en" and detect_language("12345 ... !!!") == "en"


def test_mixed_text_goes_by_its_main_script() -> None:
    assert detect_language("我们用 Python 和 PyTorch 训练了一个语言模型，上下文长度为 4096。") == "zh"
    assert detect_language("The author, 鲁迅, wrote short stories in the 1920s about village life.") == "en"


def test_japanese_is_not_taken_for_chinese() -> None:
    assert detect_language("東京で会議がありました。予算について話しました！") == "en"
