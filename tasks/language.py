"""The language a text is written in, told by its script, and the summary instruction for it.

Script is enough to pick the language of an instruction: a model asked in Chinese answers in
Chinese (issue 17: asked in English about a Chinese article, small models answered in English).
`SCRIPTS` lists scripts by Unicode ranges; `LANGUAGES` gives each script the language whose
instruction its texts get. To support a language: add its script's ranges (when new) and its
instruction to `INSTRUCTIONS`; a script without an instruction gets the English one.
Shared by the stages (summarize, aggregate, classify); reads and writes no table.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections import Counter
from dataclasses import dataclass

# (script, first code point, last code point): the letters that tell a script apart.
SCRIPTS: tuple[tuple[str, int, int], ...] = (
    ("Latin", 0x0041, 0x005A),
    ("Latin", 0x0061, 0x007A),
    ("Latin", 0x00C0, 0x024F),
    ("Greek", 0x0370, 0x03FF),
    ("Cyrillic", 0x0400, 0x052F),
    ("Hebrew", 0x0590, 0x05FF),
    ("Arabic", 0x0600, 0x06FF),
    ("Arabic", 0x0750, 0x077F),
    ("Devanagari", 0x0900, 0x097F),
    ("Thai", 0x0E00, 0x0E7F),
    ("Hangul", 0x1100, 0x11FF),
    ("Latin", 0x1E00, 0x1EFF),
    ("Greek", 0x1F00, 0x1FFF),
    ("Kana", 0x3040, 0x30FF),
    ("Hangul", 0x3130, 0x318F),
    ("Han", 0x3400, 0x4DBF),
    ("Han", 0x4E00, 0x9FFF),
    ("Hangul", 0xAC00, 0xD7AF),
    ("Han", 0xF900, 0xFAFF),
    ("Latin", 0xFF21, 0xFF3A),
    ("Latin", 0xFF41, 0xFF5A),
    ("Kana", 0xFF66, 0xFF9F),
    ("Han", 0x20000, 0x2FA1F),
)
_STARTS = sorted((first, last, script) for script, first, last in SCRIPTS)
_FIRSTS = [first for first, _, _ in _STARTS]

# Script -> language (ISO 639-1). Kana decides Japanese even among Han characters (`detect`).
LANGUAGES: dict[str, str] = {
    "Latin": "en",
    "Han": "zh",
    "Kana": "ja",
    "Hangul": "ko",
    "Cyrillic": "ru",
    "Arabic": "ar",
    "Devanagari": "hi",
    "Greek": "el",
    "Hebrew": "he",
    "Thai": "th",
}
DEFAULT_LANGUAGE = "en"
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th"})  # written without spaces between words
_KANA_SHARE = 0.1  # Japanese prose mixes Han and Kana; Chinese has no Kana at all


@dataclass(frozen=True)
class Instruction:
    """A decoder's summary prompt in one language: the system message and the user message
    around `{text}` (the instruction after the text: asked first, a small model continues the
    text instead of summarizing it)."""

    system: str
    user: str
    # The assistant turn's first words, given rather than generated (prefilled): a content-first
    # opening in the text's language steers a small model away from "The text discusses".
    lead: str = ""


# Measured with Qwen2.5-Coder-0.5B on QMSum and Chinese excerpts (BENCHMARKS.md): asked in the
# text's language, every summary came out in it, but 6 of 7 still opened "The text discusses" /
# "本文探讨了"; naming what not to write did not stop it, and asking for a list or for "the main
# facts" made it list the transcript's turns. Opening its answer for it with a clause it must
# complete ("The main point is that" / "主要观点是：") gave statements of content in 11 of 14
# sentences against 4 of 20; the lead is a lead-in the sentence filter strips
# (tasks/summarize/meta_text.py), so no stored sentence carries it.
INSTRUCTIONS: dict[str, Instruction] = {
    "en": Instruction(
        system=(
            "You write short factual summaries. You state the facts, decisions and arguments of a text "
            "as plain statements about its subject, in two or three sentences. You never mention the text, "
            "the speakers' turns or the summary itself, never continue the text, and never write a name "
            "followed by a colon."
        ),
        user=(
            'Text:\n"""\n{text}\n"""\n\n'
            "State the main points of the text above in two or three sentences. Begin with the subject "
            'itself, not with "The text" or "This".'
        ),
        lead="The main point is that",
    ),
    "zh": Instruction(
        system="你是一个摘要助手。你用简体中文直接陈述文本中的事实、结论和观点，不描述文本本身，不续写文本。",
        user='文本：\n"""\n{text}\n"""\n\n请用两三句话概括上文，直接陈述其要点，不要以“本文”或“文章”开头。',
        lead="主要观点是：",
    ),
}


def script_of(char: str) -> str | None:
    """The script of a letter, or None for digits, punctuation, spaces and unlisted scripts."""
    point = ord(char)
    k = bisect.bisect_right(_FIRSTS, point) - 1
    if k >= 0 and _STARTS[k][0] <= point <= _STARTS[k][1]:
        return _STARTS[k][2]
    return None


def script_counts(text: str) -> Counter[str]:
    return Counter(s for s in map(script_of, text) if s is not None)


def detect(text: str) -> str:
    """The language of `text` by its most frequent script (Han with enough Kana is Japanese);
    `DEFAULT_LANGUAGE` when it has no letters of a listed script."""
    counts = script_counts(text)
    if not counts:
        return DEFAULT_LANGUAGE
    if counts["Kana"] and counts["Kana"] >= _KANA_SHARE * (counts["Kana"] + counts["Han"]):
        return "ja"
    script = max(counts, key=lambda s: (counts[s], s))
    return LANGUAGES.get(script, DEFAULT_LANGUAGE)


def instruction(language: str) -> Instruction:
    """The summary prompt for `language`; the English one, without its English lead (it would
    start the answer in another language than the text's), when it has none of its own."""
    if language in INSTRUCTIONS:
        return INSTRUCTIONS[language]
    return dataclasses.replace(INSTRUCTIONS[DEFAULT_LANGUAGE], lead="")


def prompt_language(language: str) -> str:
    """The language whose prompt a text in `language` gets (the key results are grouped by)."""
    return language if language in INSTRUCTIONS else DEFAULT_LANGUAGE


@functools.cache
def scripts_of_language(language: str) -> frozenset[str]:
    """The scripts a text in `language` is written with (Japanese: Kana and Han)."""
    own = {s for s, lang in LANGUAGES.items() if lang == language}
    if language == "ja":
        own.add("Han")
    return frozenset(own or {"Latin"})


def prompt_fingerprint() -> str:
    """A hash of every instruction: part of a summarizer's model_id, so a changed wording or a
    new language is a new configuration."""
    import hashlib

    digest = hashlib.sha256()
    for language in sorted(INSTRUCTIONS):
        own = INSTRUCTIONS[language]
        digest.update(f"{language}\0{own.system}\0{own.user}\0{own.lead}\0".encode())
    for script, first, last in SCRIPTS:
        digest.update(f"{script}:{first}-{last};".encode())
    digest.update(repr(sorted(LANGUAGES.items())).encode())
    return digest.hexdigest()[:8]


def detect_language(text: str, sample_chars: int = 4000) -> str:
    """'zh' or 'en': the languages the zero-shot classifier has prompts for, from the first
    `sample_chars` characters (a Japanese or Korean text gets the English prompt)."""
    return "zh" if detect(text[:sample_chars]) == "zh" else "en"
