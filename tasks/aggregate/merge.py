"""Extractive merging: a document summary made of its segment summaries' own sentences.

A small summarizer asked to summarize summaries writes meta-text ("This post delves into...")
and loses facts (BENCHMARKS.md). Choosing sentences instead keeps every one of them
a sentence the model wrote about the text itself, needs no generation, and works in any language.
Segment summaries are repaired when written (tasks/prose.py); choosing among their sentences adds
no text and never the same sentence twice, so a document summary inherits the repair.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from tasks.evidence import SUPPORT_THRESHOLD, Evidence, split_sentences
from tasks.language import DEFAULT_LANGUAGE, UNSPACED_LANGUAGES
from tasks.prose import sentence_key, sentences

_WORD = re.compile(r"\w+")
# A document summary may say twice what a segment summary says (measured on QMSum: 1x, 2x, 3x,
# 4x max_new_tokens; BENCHMARKS.md).
MERGE_BUDGET_FACTOR = 2
MERGE_METHOD = f"extractive-central-{MERGE_BUDGET_FACTOR}x-lang"  # part of the configuration's id
DUPLICATE_SIMILARITY = 0.6  # a sentence this close (cosine of word counts) to a chosen one adds nothing


def _bag(text: str, language: str = DEFAULT_LANGUAGE) -> Counter[str]:
    """A sentence's words; in a language written without spaces (Chinese, Japanese, Thai) its
    character pairs, since a whole clause there is one \\w+ run and would match nothing."""
    if language in UNSPACED_LANGUAGES:
        return Counter(run[k : k + 2] for run in _WORD.findall(text.lower()) for k in range(max(1, len(run) - 1)))
    return Counter(w for w in _WORD.findall(text.lower()) if len(w) > 2 or not w.isascii())


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(n * b[w] for w, n in a.items() if w in b)
    norm = math.sqrt(sum(n * n for n in a.values())) * math.sqrt(sum(n * n for n in b.values()))
    return dot / norm if norm else 0.0


def select_sentences(
    summaries: Sequence[str],
    budget: int,
    count: Callable[[str], int],
    mode: str = "central",
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """Sentences of the segment summaries, in document order, within `budget` tokens.

    `central`: those most similar to the rest of the summaries (the centroid idea of LexRank):
    what many parts of the document say is what the whole is about. `lead`: the first sentence
    of each segment in order, then the second ones. Near-duplicates of a chosen sentence are
    skipped, and so are sentences with a chosen one's words (too short for a bag to tell)."""
    units = [(i, k, s) for i, summary in enumerate(summaries) for k, s in enumerate(sentences(summary))]
    if not units:
        return ""
    bags = [_bag(s, language) for _, _, s in units]
    total: Counter[str] = Counter()
    for bag in bags:
        total.update(bag)
    if mode == "lead":
        ranked = sorted(range(len(units)), key=lambda j: (units[j][1], units[j][0]))
    else:
        ranked = sorted(range(len(units)), key=lambda j: -_cosine(bags[j], total - bags[j]))
    chosen: list[int] = []
    keys: set[str] = set()
    used = 0
    for j in ranked:
        cost = count(units[j][2]) + 1
        if used + cost > budget and chosen:
            continue
        key = sentence_key(units[j][2])
        if key in keys or any(_cosine(bags[j], bags[c]) >= DUPLICATE_SIMILARITY for c in chosen):
            continue
        chosen.append(j)
        keys.add(key)
        used += cost
    joiner = "" if language in UNSPACED_LANGUAGES else " "
    return joiner.join(units[j][2] for j in sorted(chosen))


def merge_extractive(
    per_doc: dict[str, list[str]], count: Callable[[str], int], budget: int, languages: dict[str, str] | None = None
) -> dict[str, tuple[str, int]]:
    """One summary per document and its merge depth: a one-segment document keeps its summary
    (depth 0); a longer one gets its most central sentences within `budget` tokens (depth 1),
    compared and joined as its language (`languages`, by doc_id) writes them."""
    languages = languages or {}
    return {
        doc: (items[0], 0)
        if len(items) == 1
        else (select_sentences(items, budget, count, language=languages.get(doc, DEFAULT_LANGUAGE)), 1)
        for doc, items in per_doc.items()
        if items
    }


def supported_only(summary: str, text: str, threshold: float = SUPPORT_THRESHOLD) -> tuple[str, int]:
    """The document summary without its sentences that lack support in the document's text
    (tasks/evidence.py), and how many were removed. Its sentences come from checked segment
    summaries, so this is a guard: what it removes is counted, never silent."""
    parts = split_sentences(summary)
    if not parts:
        return summary, 0
    evidence = Evidence(text)
    kept = [s for s in parts if evidence.support(s).score >= threshold]
    if len(kept) == len(parts):
        return summary, 0
    return " ".join(kept), len(parts) - len(kept)
