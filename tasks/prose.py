"""Checks that a summary is clean prose, and the one safe repair (dropping repeated sentences).

A summary fails when it copies a speaker tag from its source ("Grad C: ..."), carries remnants
of a chat template ("<|im_start|>", a bare "assistant" line), or says the same sentence twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# "Grad C:", "Project Manager:", "PhD A:" at the start of a line of a transcript.
_SOURCE_TAG = re.compile(r"^[ \t]*([A-Z][\w.'-]*(?: [A-Z0-9][\w.'-]*){0,2}):[ \t]", re.MULTILINE)
_SUMMARY_TAG = re.compile(r"(?:^|(?<=[\n.!?\"]))\s*([A-Z][\w.'-]*(?: [A-Z0-9][\w.'-]*){0,2}):\s")
_TEMPLATE = re.compile(
    r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<<SYS>>|^\s*(?:system|user|assistant)\s*$",
    re.MULTILINE | re.IGNORECASE,
)
# Sentence ends in Latin and CJK scripts; a sentence is compared by its words alone.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
_WORD = re.compile(r"\w+")
CHECKS = ("speaker_tags", "template_remnants", "repeated_sentences")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _sentence_key(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower()))


def speaker_tags(text: str) -> set[str]:
    """The names a transcript puts before its turns."""
    return set(_SOURCE_TAG.findall(text))


def prose_issues(summary: str, source: str | None = None) -> list[str]:
    """The checks (of CHECKS) this summary fails. With its source text, a speaker tag counts when
    the source uses that tag; without it, any "Name:" at the start of a sentence counts."""
    issues = []
    tags = set(_SUMMARY_TAG.findall(summary))
    if source is not None:
        tags &= speaker_tags(source)
    if tags:
        issues.append("speaker_tags")
    if _TEMPLATE.search(summary):
        issues.append("template_remnants")
    keys = [k for k in (_sentence_key(s) for s in sentences(summary)) if len(k.split()) >= 3]
    if len(set(keys)) < len(keys):
        issues.append("repeated_sentences")
    return issues


def drop_repeated_sentences(text: str) -> str:
    """The text with every sentence said before removed (small models loop on a sentence)."""
    seen: set[str] = set()
    kept = []
    for sentence in sentences(text):
        key = _sentence_key(sentence)
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept) if len(kept) < len(sentences(text)) else text


def count_unclean(pairs: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    """Per check, how many (summary, source) pairs fail it, and how many fail any."""
    counts = dict.fromkeys((*CHECKS, "unclean"), 0)
    for summary, source in pairs:
        issues = prose_issues(summary, source)
        for issue in issues:
            counts[issue] += 1
        counts["unclean"] += bool(issues)
    return counts
