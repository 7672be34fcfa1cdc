"""Every stored summary sentence states the text's content and is backed by it.

A generated summary is cut into sentences; each one goes through, in order:
1. meta-text (meta_text.py): a sentence that describes the text ("The text discusses ...",
   "本文介绍了 ...") loses its lead-in when what remains is a statement; in a transcript (a text
   with speaker tags) a topic sentence is said of the meeting ("The participants discussed X",
   its claim X checked for support); else it is dropped. List markers ("1. ") are layout;
2. continuation: a sentence that continues the text instead of summarizing it (a speaker tag,
   a verbatim copy, a transcript's voice: fillers and first person; markup or code) is dropped;
3. support: the span of the segment that best supports it (tasks/evidence.py); below the
   threshold it is dropped.
What is dropped is counted by reason; what is kept comes with its span, offsets into the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tasks.evidence import SUPPORT_THRESHOLD, Evidence, Support, features, split_sentences
from tasks.language import detect
from tasks.prose import prose_issues, speaker_tags
from tasks.summarize.meta_text import claim, meta_rewrite
from tasks.summarize.semantic_support import SEMANTIC_THRESHOLD, Embedder, SemanticEvidence

REASONS = ("meta", "continuation", "unsupported")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_CJK_WRITING = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")  # with CJK punctuation

# --- continuation ----------------------------------------------------------------------------
# Markup or code copied from the text (a fence, a heading, a table row, a statement of code).
_NOT_PROSE = re.compile(
    r"^\s*(?:```|#{1,6}(?:\s|$)|\|)|```|^\s*(?:def|class|import|from|return|for|while|if)\s[^.]*[:(=]"
    r"|[A-Za-z_]\w*(?:\(|\[)[^\s]|\w\s=\s\S"
)
_MIN_FEATURES = 2  # fewer says nothing a span could support ("Right .", "### 4.")
_FILLER = re.compile(
    r"(?<![\w'])(?:uh|um|uh-huh|mm-hmm|hmm|mm|yeah|yep|okay|ok|oh|ah|huh|I|I'm|I've|I'll|I'd|we|we're|"
    r"we've|we'll|us|our|you|you're|your|my|me|let's)(?![\w'])|\{(?:disfmarker|vocalsound|gap)\}"
)
_TOKEN = re.compile(r"\w+")
_HEAD = re.compile(r"^\W{0,2}([A-Za-z][\w .'-]{0,40}?)\s*:")
# A list item's marker ("1. ", "2) ", "- ", "* "): the item is the sentence, the marker is layout.
_LIST_MARKER = re.compile(r"^[ \t]*(?:(?:\d{1,2}[.)]|[-*•])[ \t]+|\d{1,2}[、．])", re.MULTILINE)
VERBATIM_SHARE = 0.8  # a sentence this much of whose words run in the text's order is a copy
_MIN_VERBATIM_WORDS = 6


def continuation(sentence: str, source: str) -> str | None:
    """Why the sentence continues the text rather than summarizing it, or None: `speaker_tag`,
    `markup` (code, a heading, a table row or a fragment without two content words), and in a
    transcript (a text with speaker tags) `verbatim` (most of its words, in order, as one run of
    the text: a turn reproduced) or `transcript_voice` (fillers, first or second person). A
    sentence copied from an article is an extractive summary sentence, not a continuation."""
    if "speaker_tags" in prose_issues(sentence, source):
        return "speaker_tag"
    if _NOT_PROSE.search(sentence) or len(features(sentence)) < _MIN_FEATURES:
        return "markup"
    tags = speaker_tags(source)
    if not tags:
        return None
    head = _HEAD.match(sentence)
    if head and _squashed(head[1]) in {_squashed(t) for t in tags}:  # "PhD c: Right.", "Post doc E: Yeah ."
        return "speaker_tag"
    if _verbatim(sentence, source):
        return "verbatim"
    named = sentence
    for tag in sorted(tags, key=len, reverse=True):  # "PhD I reported ..." names a speaker: not "I"
        named = named.replace(tag, "")
    if _FILLER.search(named):
        return "transcript_voice"
    return None


def _squashed(name: str) -> str:
    return "".join(name.split()).lower()


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
    summary: str,
    segment_text: str,
    char_start: int,
    threshold: float = SUPPORT_THRESHOLD,
    embedder: Embedder | None = None,
) -> FilteredSummary:
    """The summary's sentences checked against the segment it summarizes (tasks/evidence.py),
    the segment starting at `char_start` in its document. With an `embedder`, an English
    segment's support is the better of the lexical and the semantic score (semantic_support.py),
    held to SEMANTIC_THRESHOLD, the threshold calibrated for that maximum."""
    result = FilteredSummary()
    evidence = Evidence(segment_text, char_start)
    semantic = None
    if embedder is not None and detect(segment_text) == "en":
        semantic = SemanticEvidence(evidence, embedder, max_units=1)
        threshold = max(threshold, SEMANTIC_THRESHOLD)
    transcript = bool(speaker_tags(segment_text))
    follows_meta = False
    for raw in split_sentences(_LIST_MARKER.sub("", summary)):
        sentence = meta_rewrite(raw, follows_meta, transcript)
        follows_meta = sentence != raw
        if sentence is None:
            result.removed["meta"] += 1
            result.removed_examples.append(("meta", raw))
            continue
        result.rewritten += sentence != raw
        reason = "continuation" if continuation(sentence, segment_text) else None
        support = _support(evidence, semantic, claim(sentence)) if reason is None else None
        if support is not None and support.score < threshold:
            reason = "unsupported"
        if reason or support is None:
            result.removed[reason or "unsupported"] += 1
            result.removed_examples.append((reason or "unsupported", sentence))
            continue
        result.kept.append(KeptSentence(sentence, support.char_start, support.char_end, support.score))
    return result


def _support(evidence: Evidence, semantic: SemanticEvidence | None, text: str) -> Support:
    """The lexical support, or the semantic one (cosine similarity) when it scores higher."""
    lexical = evidence.support(text)
    if semantic is None:
        return lexical
    (meaning,) = semantic.supports([text])
    return meaning if meaning.score > lexical.score else lexical


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
