"""The language of a text, told by its script: enough to pick a prompt's language.

Below the stage packages (classify and summarize both ask); reads and writes no table. Only
the scripts longdoc has prompts for are told apart; any other text counts as English.
"""

from __future__ import annotations

# Han ideographs (CJK unified, extension A, compatibility) and the CJK punctuation block.
_HAN = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))
_KANA = ((0x3040, 0x30FF),)
# Han characters among a text's letters above this share make it Chinese: a Chinese text quoting
# English names or code stays Chinese, an English text quoting a Chinese name stays English.
HAN_SHARE = 0.3


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in ranges)


def detect_language(text: str, sample_chars: int = 4000) -> str:
    """'zh' or 'en', from the letters of the text's first `sample_chars` characters: Han
    characters over HAN_SHARE of them (with no kana, which would make it Japanese) is Chinese."""
    letters = han = kana = 0
    for char in text[:sample_chars]:
        if not char.isalpha():
            continue
        letters += 1
        if _in(_HAN, char):
            han += 1
        elif _in(_KANA, char):
            kana += 1
    if letters and han / letters > HAN_SHARE and kana == 0:
        return "zh"
    return "en"
