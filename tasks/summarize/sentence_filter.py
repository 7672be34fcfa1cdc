"""Every stored summary sentence states the text's content and is backed by it.

A generated summary is cut into sentences; each one goes through, in order:
1. meta-text: a sentence that describes the text ("The text discusses ...", "本文介绍了 ...") is
   rewritten by stripping its lead-in when what remains is a statement ("The article argues that
   X" -> "X"), else dropped;
2. continuation: a sentence that continues the transcript instead of summarizing it (a speaker
   tag, a verbatim copy of the text, or a transcript's voice: fillers and first person) is dropped;
3. support: the span of the segment that best supports it (tasks/evidence.py); below the
   threshold it is dropped.
What is dropped is counted by reason; what is kept comes with its span, offsets into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tasks.evidence import SUPPORT_THRESHOLD, Evidence, split_sentences
from tasks.prose import prose_issues, speaker_tags

REASONS = ("meta", "continuation", "unsupported")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_CJK_WRITING = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")  # with CJK punctuation

# --- meta-text -------------------------------------------------------------------------------
_EN_OPENER = r"(?:(?:overall|in summary|in short|in conclusion|to summarize|in essence)\s*,\s*)?"
_EN_SUBJECT = (
    r"(?:the|this|that|these|the given|the provided|the above)\s+(?:\w+\s+){0,2}?"
    r"(?:text|article|passage|excerpt|document|transcript|conversation|dialogue|post|blog|paper|story|"
    r"essay|section|summary|snippet|extract|content|speakers?|authors?|writer|narrator|meeting\s+(?:excerpt|"
    r"transcript|notes))s?"
)
_EN_SAYING = (
    r"(?:says|said|states|stated|argues|argued|notes|noted|claims|explains|emphasizes|stresses|suggests|"
    r"concludes|reports|mentions|points out|highlights)"
)
# "The article argues that X": X is a statement of its own.
_EN_CLAUSE_LEAD = re.compile(
    rf"^{_EN_OPENER}(?:{_EN_SUBJECT})\s+(?:also\s+)?{_EN_SAYING}\s*(?:that\s+|:\s*|,\s*)", re.IGNORECASE
)
# "In this article, X" / "According to the text, X": X is a statement of its own.
_EN_FRAME = re.compile(
    r"^(?:in|within|throughout)\s+(?:this|the)\s+(?:\w+\s+)?(?:text|article|passage|excerpt|document|"
    r"transcript|conversation|post|paper|section|meeting excerpt)\s*,\s*|^according to (?:the|this) "
    r"(?:text|article|passage|excerpt|document|transcript|speakers?|author)\s*,\s*",
    re.IGNORECASE,
)
# Anything else whose subject is the text or its speaker describes the text: "The text
# discusses the development of X", "The text is written in plain prose", "This is a summary of".
_EN_ABOUT = re.compile(
    rf"^{_EN_OPENER}(?:{_EN_SUBJECT})\s+(?:\w+\s+)?(?:is|are|was|were|discuss|describ|provid|present|focus|"
    r"talk|explor|delv|cover|outlin|introduc|summar|appear|seem|offer|give|highlight|touch|revolv|center|"
    r"detail|examin|review|shar|contain|include|consist|begin|start|end|conclud|mention|address|deal|"
    r"reflect|raise|illustrat|show|portray|depict|tell|emphasi|express|convey)\w*\b"
    r"|^this is (?:a|an|the) (?:\w+\s+){0,2}(?:summary|text|article|excerpt|transcript|story|scene)\b",
    re.IGNORECASE,
)
_ZH_SUBJECT = r"(?:本文|本篇|该文|这篇(?:文章|论文|文本)?|此文|文章|原文|上文|文本|作者|讲话者|发言人)"
_ZH_OPENER = r"(?:总之|总的来说|综上所述|总体而言|简而言之)?[，,]?"
# "本文指出，X" / "文章认为X": X is a statement.
_ZH_CLAUSE_LEAD = re.compile(
    rf"^{_ZH_OPENER}{_ZH_SUBJECT}(?:还|也)?(?:指出|认为|表示|强调|提出|说明|写道)(?:了)?[，,：:]?"
)
# "在本文中，X" / "根据文章，X".
_ZH_FRAME = re.compile(
    rf"^(?:在{_ZH_SUBJECT}中|{_ZH_SUBJECT}中|根据{_ZH_SUBJECT}|从{_ZH_SUBJECT}(?:中)?可以看出)[，,：:]?"
)
# "本文介绍了X" / "这篇文章讨论了X": X is a topic, not a statement.
_ZH_ABOUT = re.compile(
    rf"^{_ZH_OPENER}{_ZH_SUBJECT}(?:主要|首先|还|也|则|将|对|就|从|以)?(?:介绍|讨论|探讨|描述|概述|总结|阐述|分析|论述|"
    r"研究|提供|涉及|是|围绕|关注|聚焦|讲述|回顾|展示|给出|包括|包含|分为|旨在|针对|重点|详细|简要|深入|系统|全面)"
)
_MIN_STATEMENT_WORDS = 4
_MIN_STATEMENT_CJK = 6


def _statement(rest: str) -> str | None:
    """What remains after a lead-in, capitalized, when it can stand as a sentence; else None."""
    rest = rest.strip(" ,，:：")
    if not rest:
        return None
    cjk = len(_CJK.findall(rest))
    enough = cjk >= _MIN_STATEMENT_CJK if cjk * 2 > len(rest) else len(rest.split()) >= _MIN_STATEMENT_WORDS
    if not enough or _EN_ABOUT.match(rest) or _ZH_ABOUT.match(rest):
        return None
    return rest[0].upper() + rest[1:]


def meta_rewrite(sentence: str) -> str | None:
    """The sentence as a statement of the text's content: unchanged when it is one, its
    lead-in stripped when what remains is one, else None (it only describes the text)."""
    for lead in (_EN_CLAUSE_LEAD, _EN_FRAME, _ZH_CLAUSE_LEAD, _ZH_FRAME):
        m = lead.match(sentence)
        if m:
            return _statement(sentence[m.end() :])
    if _EN_ABOUT.match(sentence) or _ZH_ABOUT.match(sentence):
        return None
    return sentence


# --- continuation ----------------------------------------------------------------------------
_FILLER = re.compile(
    r"(?<![\w'])(?:uh|um|uh-huh|mm-hmm|hmm|mm|yeah|yep|okay|ok|oh|ah|huh|I|I'm|I've|I'll|I'd|we|we're|"
    r"we've|we'll|us|our|you|you're|your|my|me|let's)(?![\w'])|\{(?:disfmarker|vocalsound|gap)\}"
)
_TOKEN = re.compile(r"\w+")
VERBATIM_SHARE = 0.8  # a sentence this much of whose words run in the text's order is a copy
_MIN_VERBATIM_WORDS = 6


def continuation(sentence: str, source: str) -> str | None:
    """Why the sentence continues the transcript rather than summarizing it, or None:
    `speaker_tag`, `verbatim` (most of its words, in order, as one run of the text) or
    `transcript_voice` (fillers or first/second person in a summary of a transcript)."""
    if "speaker_tags" in prose_issues(sentence, source):
        return "speaker_tag"
    if _verbatim(sentence, source):
        return "verbatim"
    if speaker_tags(source) and _FILLER.search(sentence):
        return "transcript_voice"
    return None


def _verbatim(sentence: str, source: str) -> bool:
    chars = _CJK.findall(sentence)
    if len(chars) * 2 > len(sentence.replace(" ", "")):  # CJK: a run of the sentence's characters
        if len(chars) < 2 * _MIN_VERBATIM_WORDS:
            return False
        return _longest_run(chars, "".join(_CJK.findall(source)), "") >= VERBATIM_SHARE * len(chars)
    words = _TOKEN.findall(sentence.lower())
    if len(words) < _MIN_VERBATIM_WORDS:
        return False
    text = " " + " ".join(_TOKEN.findall(source.lower())) + " "
    return _longest_run(words, text, " ") >= VERBATIM_SHARE * len(words)


def _longest_run(items: list[str], text: str, joiner: str) -> int:
    """The most consecutive items of the sentence found together in `text` (two pointers: a
    run's tail is a run too)."""
    best, i = 0, 0
    for j in range(len(items)):
        while i <= j and f"{joiner}{joiner.join(items[i : j + 1])}{joiner}" not in text:
            i += 1
        best = max(best, j - i + 1)
    return best


# --- the filter ------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeptSentence:
    sentence: str
    char_start: int  # into the document
    char_end: int
    support: float


@dataclass
class FilteredSummary:
    """A summary's sentences that survived, with their spans, and what was removed by reason."""

    kept: list[KeptSentence] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    rewritten: int = 0  # meta lead-ins stripped from a sentence that was kept or later removed
    removed_examples: list[tuple[str, str]] = field(default_factory=list)  # (reason, sentence)

    def text(self) -> str:
        """The kept sentences as one summary: no space between CJK sentences."""
        out = ""
        for k in self.kept:
            joined = out and not (_CJK_WRITING.match(out[-1]) and _CJK_WRITING.match(k.sentence[0]))
            out += (" " if joined else "") + k.sentence
        return out


def filter_summary(
    summary: str, segment_text: str, char_start: int, threshold: float = SUPPORT_THRESHOLD
) -> FilteredSummary:
    """The summary's sentences checked against the segment it summarizes (tasks/evidence.py),
    the segment starting at `char_start` in its document."""
    result = FilteredSummary()
    evidence = Evidence(segment_text, char_start)
    for raw in split_sentences(summary):
        sentence = meta_rewrite(raw)
        if sentence is None:
            result.removed["meta"] += 1
            result.removed_examples.append(("meta", raw))
            continue
        result.rewritten += sentence != raw
        reason = "continuation" if continuation(sentence, segment_text) else None
        support = evidence.support(sentence) if reason is None else None
        if support is not None and support.score < threshold:
            reason = "unsupported"
        if reason or support is None:
            result.removed[reason or "unsupported"] += 1
            result.removed_examples.append((reason or "unsupported", sentence))
            continue
        result.kept.append(KeptSentence(sentence, support.char_start, support.char_end, support.score))
    return result


def evidence_rows(filtered: FilteredSummary, segment: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """summary_evidence rows of a segment's kept sentences, numbered in summary order."""
    return [
        {
            "segment_id": segment["segment_id"],
            "model": model,
            "sentence_no": n,
            "doc_id": segment["doc_id"],
            "sentence": k.sentence,
            "char_start": k.char_start,
            "char_end": k.char_end,
            "support": k.support,
        }
        for n, k in enumerate(filtered.kept)
    ]


def sentence_columns(filtered: FilteredSummary, raw: str) -> dict[str, Any]:
    """The segment_summaries columns that say what the filter did to one summary."""
    return {
        "summary": filtered.text(),
        "raw_summary": raw,
        "sentences_kept": len(filtered.kept),
        **{f"sentences_removed_{reason}": n for reason, n in filtered.removed.items()},
        "sentences_rewritten_meta": filtered.rewritten,
    }


def sentence_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The run's counts over segment_summaries rows: every sentence generated is kept or
    removed for one reason, so summary_sentences is their sum."""
    counts = {"summary_sentences": 0, "summary_sentences_kept": 0}
    counts |= {f"summary_sentences_removed_{reason}": 0 for reason in REASONS}
    counts["summary_sentences_rewritten_meta"] = 0
    for row in rows:
        removed = [row[f"sentences_removed_{reason}"] for reason in REASONS]
        counts["summary_sentences"] += row["sentences_kept"] + sum(removed)
        counts["summary_sentences_kept"] += row["sentences_kept"]
        for reason, n in zip(REASONS, removed, strict=True):
            counts[f"summary_sentences_removed_{reason}"] += n
        counts["summary_sentences_rewritten_meta"] += row["sentences_rewritten_meta"]
    return counts
