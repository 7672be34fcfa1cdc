"""The script-based language guess that picks a prompt's language."""

from __future__ import annotations

from tasks.language import detect_language


def test_scripts_are_told_apart() -> None:
    assert detect_language("本文研究了贵州东南部的地质构造特征。") == "zh"
    assert detect_language("The committee met on Tuesday to discuss the budget.") == "en"
    assert detect_language("") == "en" and detect_language("12345 ... !!!") == "en"


def test_mixed_text_goes_by_its_main_script() -> None:
    assert detect_language("我们用 Python 和 PyTorch 训练了一个语言模型，上下文长度为 4096。") == "zh"
    assert detect_language("The author, 鲁迅, wrote short stories in the 1920s about village life.") == "en"


def test_japanese_is_not_taken_for_chinese() -> None:
    assert detect_language("東京で会議がありました。予算について話しました！") == "en"
