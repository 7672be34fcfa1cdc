"""Evidence: the span of a text that best supports a sentence, and how well it does.

A lexical measure that works in any script: a sentence is a set of features (content words of
cased and other space-separated scripts, cut to their first letters so "discussed" meets
"discussion"; character bigrams of Chinese and Japanese text, which has no spaces), and a span
supports it by the weighted share of those features it contains (rarer features in the text weigh
more). Spans are windows of consecutive units (sentences, lines, clauses) of the text, so the
search is linear in the text's length. The threshold is calibrated on the development corpus
(benchmarks/evidence_calibration.py, BENCHMARKS.md). Below the stages: the summarize stage checks
segment summaries with it, the aggregate stage the document summary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Calibrated on QMSum and the Chinese articles (benchmarks/evidence_calibration.py): reference
# sentences against their own text vs against another document's.
SUPPORT_THRESHOLD = 0.35
MAX_UNIT_CHARS = 300  # a longer unit is cut at clauses, then at spaces
MAX_SPAN_CHARS = 600  # a window grows by whole units up to this length (one unit at least)
STEM_CHARS = 6

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(rf"[^\W_{_CJK}]+")
# A unit of the text: up to and with a sentence end (Latin or CJK), or a line.
_UNIT_END = re.compile(rf"[.!?。！？…]+[\"”»」』’)]*(?=\s|$|[{_CJK}])|[。！？]+[\"”»」』’)]*|\n+")
_CLAUSE_END = re.compile(r"[,;:，；：、]\s*")
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?。！？])|(?<=[.!?。！？][\"”»」』’)]))\s+"
    r"|(?<=[。！？])(?![\"”»」』’)\s])|(?<=[。！？][\"”»」』’)])(?!\s)|\n+"
    rf"|(?<=[{_CJK}][.!?])(?=[{_CJK}])"
)
_STOP = frozenset(
    """a an the and or but if then so of to in on at by for with from as into about over under is are was
    were be been being am do does did have has had having it its this that these those there here what which
    who whom whose when where why how all any both each few more most other some such no nor not only own
    same than too very can will just should would could may might must shall also yet their them they he
    she his her him we our us you your i me my mine one two via per up out off again further once because
    while during before after above below between through until against among within without upon well
    like really quite much many get got going go gone make made said say says um uh yeah okay oh mm hmm
    disfmarker vocalsound gap nonvocalsound""".split()  # noqa: SIM905 (a word list reads best as words)
)


@dataclass(frozen=True)
class Support:
    """A sentence's best supporting span: offsets into the text searched (plus its `offset`)."""

    char_start: int
    char_end: int
    score: float


def split_sentences(text: str) -> list[str]:
    """Sentences of a summary, at Latin and CJK sentence ends and at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def features(text: str) -> set[str]:
    """What a sentence or span is compared by: content-word stems and CJK character bigrams."""
    out = {w[:STEM_CHARS] for w in (m.lower() for m in _WORD.findall(text)) if _content(w)}
    for run in _CJK_RUN.findall(text):
        out.update(run[i : i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            out.add(run)
    return out


def _content(word: str) -> bool:
    return word not in _STOP and (len(word) > 2 or word.isdigit())


def text_units(text: str) -> list[tuple[int, int]]:
    """(start, end) of the text's units, whitespace trimmed, none longer than MAX_UNIT_CHARS."""
    units: list[tuple[int, int]] = []
    pos = 0
    for m in _UNIT_END.finditer(text):
        units.extend(_cut(text, pos, m.end()))
        pos = m.end()
    units.extend(_cut(text, pos, len(text)))
    return units


def _cut(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    """The piece [start, end) trimmed, in parts of at most MAX_UNIT_CHARS (clauses, spaces)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > MAX_UNIT_CHARS:
        limit = start + MAX_UNIT_CHARS
        cut = max((m.end() for m in _CLAUSE_END.finditer(text, start + 1, limit)), default=-1)
        if cut <= start:
            cut = text.rfind(" ", start + 1, limit) + 1 or limit
        yield from _cut(text, start, cut)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


class Evidence:
    """A text prepared for support searches: its units, their features and the features' weights.

    Build once per text, then `support(sentence)` for each sentence; offsets are into the text
    plus `offset` (a segment's char_start makes them offsets into its document)."""

    def __init__(self, text: str, offset: int = 0) -> None:
        self.text = text
        self.offset = offset
        self.units = text_units(text)
        self.unit_features = [features(text[a:b]) for a, b in self.units]
        counts: dict[str, int] = {}
        for found in self.unit_features:
            for f in found:
                counts[f] = counts.get(f, 0) + 1
        self._units_with = counts

    def weight(self, feature: str) -> float:
        """Rarer in the text weighs more (idf over its units); absent features weigh the most."""
        return math.log(1 + (len(self.units) + 1) / (1 + self._units_with.get(feature, 0)))

    def _length(self, window: tuple[float, int, int]) -> int:
        return self.units[window[2]][1] - self.units[window[1]][0]

    def support(self, sentence: str) -> Support:
        """The window of consecutive units holding the largest weighted share of the sentence's
        features (the shortest such window on a tie). A sentence without features has none."""
        wanted = features(sentence)
        if not wanted or not self.units:
            return Support(self.offset, self.offset, 0.0)
        weights = {f: self.weight(f) for f in wanted}
        total = sum(weights.values())
        hits = [wanted & found for found in self.unit_features]
        best = (0.0, 0, 0)  # score, first unit, last unit
        for i in range(len(self.units)):
            if not hits[i]:
                continue  # a best window starts with a unit that has a feature
            covered: set[str] = set()
            for j in range(i, len(self.units)):
                if j > i and self.units[j][1] - self.units[i][0] > MAX_SPAN_CHARS:
                    break
                if not hits[j]:
                    continue
                covered |= hits[j]
                score = sum(weights[f] for f in covered) / total
                shorter = self.units[j][1] - self.units[i][0] < self._length(best)
                if score > best[0] + 1e-9 or (score > best[0] - 1e-9 and shorter):
                    best = (score, i, j)
        score, i, j = best
        if score == 0.0:
            return Support(self.offset, self.offset, 0.0)
        return Support(self.offset + self.units[i][0], self.offset + self.units[j][1], round(score, 4))


def best_support(sentence: str, text: str, offset: int = 0) -> Support:
    return Evidence(text, offset).support(sentence)
