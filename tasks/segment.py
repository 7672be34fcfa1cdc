"""Segment: token windows of at most `max_tokens` with overlap, cut at the best boundary.

The document is tokenized once with the consuming model's tokenizer; every cut falls between
two tokens and is ranked (paragraph > line > sentence > word > inside a word). A cut never
splits a code point and avoids splitting a grapheme cluster. Each segment is re-encoded to
prove it fits: `input_tokens` (text plus special tokens and prompt template) <= max_tokens.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from storage.datasets import Store
from tasks.errors import ConfigError
from tasks.ingest import load_texts

SEGMENTER_VERSION = "1"
PARAGRAPH, LINE, SENTENCE, WORD, INSIDE_WORD, INSIDE_GRAPHEME, SPLIT_CODE_POINT = 4, 3, 2, 1, 0, -1, -2
SENTENCE_END = set(".!?…")
CLOSERS = set("\"'”’)]»")
CJK_SENTENCE_END = set("。！？｡")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Span:
    seq: int
    char_start: int
    char_end: int
    n_tokens: int
    input_tokens: int
    overlap_tokens: int


@dataclass(frozen=True)
class Segmenter:
    """How one model's segments are cut: its tokenizer, budget and overlap."""

    tokenizer: Any
    tokenizer_name: str
    max_tokens: int
    overlap_tokens: int
    overhead_tokens: int  # special tokens and prompt template around the text
    min_fill: float = 0.7  # a cut is searched first in the last 30% of the window

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError(
                f"--max-tokens {self.max_tokens} leaves no room for text: the model adds "
                f"{self.overhead_tokens} tokens of its own"
            )
        if not 0 <= self.overlap_tokens <= self.budget // 2:
            raise ConfigError(f"--overlap-tokens must be between 0 and half the text budget ({self.budget // 2})")

    @property
    def budget(self) -> int:
        return self.max_tokens - self.overhead_tokens

    @property
    def segmenter_id(self) -> str:
        key = (
            f"{self.tokenizer_name}|{self.max_tokens}|{self.overlap_tokens}|{self.overhead_tokens}|{SEGMENTER_VERSION}"
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def encode(self, text: str) -> list[tuple[int, int]]:
        """Token character offsets of `text`; text that looks like a special token is text."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True)
        return [tuple(o) for o in enc["offset_mapping"]]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def split(self, text: str) -> list[Span]:
        offsets = self.encode(text)
        if not offsets:  # nothing the tokenizer keeps (e.g. only zero-width characters)
            lo, hi = _char_span(text, [], 0, 0)
            return [Span(0, lo, hi, 0, self.overhead_tokens, 0)] if hi > lo else []
        levels = cut_levels(text, offsets)
        spans: list[Span] = []
        start, prev_end = 0, 0
        while True:
            end = self._fit_end(text, offsets, levels, start, prev_end)
            char_start, char_end = _char_span(text, offsets, start, end)
            if char_end > char_start:  # a window of whitespace alone is no segment
                n_tokens = self.count(text[char_start:char_end])
                overlap = max(0, prev_end - start) if spans else 0
                span = Span(len(spans), char_start, char_end, n_tokens, n_tokens + self.overhead_tokens, overlap)
                spans.append(span)
            if end == len(offsets):
                return spans
            first_char = spans[-1].char_start if spans else -1
            start, prev_end = self._next_start(levels, start, end), end
            while start < end and text_start(text, offsets, start) <= first_char:
                start += 1  # whitespace-only tokens at the front: starts must move forward

    def _fit_end(
        self, text: str, offsets: list[tuple[int, int]], levels: Sequence[int], start: int, prev_end: int
    ) -> int:
        """The best cut for the window at `start` whose re-encoded text fits the budget."""
        window = self.budget
        while True:
            if start + window >= len(offsets):
                end = len(offsets)
            else:
                end = choose_end(levels, start, window, prev_end, self.min_fill)
            char_start, char_end = _char_span(text, offsets, start, end)
            excess = self.count(text[char_start:char_end]) - self.budget
            if excess <= 0:
                return end
            window = max(1, min(window, end - start) - excess)  # re-encoding merged differently

    def _next_start(self, levels: Sequence[int], start: int, end: int) -> int:
        if self.overlap_tokens == 0:
            return end
        return choose_start(levels, start, end, self.overlap_tokens)


def choose_end(levels: Sequence[int], start: int, window: int, prev_end: int, min_fill: float) -> int:
    """The cut ending the segment that starts at token `start` (cut i = before token i)."""
    hi = start + window
    lo = max(start + max(1, math.ceil(window * min_fill)), prev_end + 1)
    lo = min(lo, hi)
    best = max(range(lo, hi + 1), key=lambda i: (levels[i], i))
    if levels[best] >= WORD:
        return best
    # No word boundary late in the window: take the latest one anywhere past the previous end.
    for i in range(lo - 1, max(start, prev_end), -1):
        if levels[i] >= WORD:
            return i
    # One unit alone exceeds the budget: cut inside it, never inside a code point.
    for minimum in (INSIDE_WORD, INSIDE_GRAPHEME):
        for i in range(hi, start, -1):
            if levels[i] >= minimum:
                return i
    return hi


def choose_start(levels: Sequence[int], start: int, end: int, overlap: int) -> int:
    """Where the next segment starts: as close to `overlap` tokens back as a boundary allows."""
    first = max(start + 1, end - overlap)
    candidates = range(first, end)
    for minimum, last in ((SENTENCE, end - overlap // 2), (WORD, end)):
        for i in candidates:
            if i >= last:
                break
            if levels[i] >= minimum:
                return i
    if levels[end] < WORD:  # the previous cut was inside a giant unit: overlap inside it too
        for i in candidates:
            if levels[i] >= INSIDE_WORD:
                return i
    return end


def cut_levels(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """The boundary level of every cut position 0..n (cut i lies before token i)."""
    runs = [(m.start(), m.end()) for m in _WHITESPACE.finditer(text)]
    run_starts = [r[0] for r in runs]
    n = len(offsets)
    levels = [PARAGRAPH] * (n + 1)
    for i in range(1, n):
        levels[i] = _cut_level(text, offsets[i - 1][1], offsets[i][0], runs, run_starts)
    return levels


def _cut_level(text: str, a: int, b: int, runs: list[tuple[int, int]], run_starts: list[int]) -> int:
    if b < a:
        return SPLIT_CODE_POINT  # byte-level tokens sharing one character
    if b < len(text) and _joins_previous(text, b):
        return INSIDE_GRAPHEME
    k = bisect.bisect_right(run_starts, a) - 1  # the last whitespace run starting at or before a
    if k >= 0 and runs[k][1] >= a:  # the cut touches that run
        ws_start, ws_end = runs[k]
        newlines = text.count("\n", ws_start, ws_end)
        if newlines >= 2:
            return PARAGRAPH
        if newlines == 1:
            return LINE
        return SENTENCE if _ends_sentence(text, ws_start) else WORD
    if a == 0 or b >= len(text):
        return WORD
    before, after = text[a - 1], text[b]
    if before in CJK_SENTENCE_END:
        return SENTENCE
    if _no_space_script(before) or _no_space_script(after):
        return WORD
    return INSIDE_WORD


def _ends_sentence(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in CLOSERS:
        i -= 1
    return i >= 0 and (text[i] in SENTENCE_END or text[i] in CJK_SENTENCE_END)


def _joins_previous(text: str, b: int) -> bool:
    """Whether the character at b belongs to the grapheme cluster before it."""
    ch, prev = text[b], text[b - 1] if b > 0 else ""
    if prev == "\u200d" or ch == "\u200d" or (prev == "\r" and ch == "\n"):
        return True
    if unicodedata.category(ch) in ("Mn", "Me", "Mc"):
        return True
    code = ord(ch)
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    return 0x1F1E6 <= code <= 0x1F1FF and prev != "" and 0x1F1E6 <= ord(prev) <= 0x1F1FF


def _no_space_script(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3000 <= code <= 0x9FFF  # CJK punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul
        or 0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x1000 <= code <= 0x109F  # Myanmar
        or 0x1780 <= code <= 0x17FF  # Khmer
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x3FFFF
    )


def text_start(text: str, offsets: list[tuple[int, int]], start: int) -> int:
    """Where a segment starting at token `start` begins, leading whitespace skipped."""
    return _char_span(text, offsets, start, len(offsets))[0]


def _char_span(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The characters of tokens [start, end), including uncounted characters up to the next
    token (the tokenizer may drop some), without leading or trailing whitespace."""
    lo = 0 if start == 0 else offsets[start][0]
    hi = len(text) if end == len(offsets) else offsets[end][0]
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi


def segment_id_for(doc_id: str, segmenter_id: str, seq: int) -> str:
    return hashlib.sha256(f"{doc_id}|{segmenter_id}|{seq}".encode()).hexdigest()[:20]


def segment_rows(doc_id: str, text: str, segmenter: Segmenter) -> Iterator[dict[str, Any]]:
    for span in segmenter.split(text):
        yield {
            "segment_id": segment_id_for(doc_id, segmenter.segmenter_id, span.seq),
            "doc_id": doc_id,
            "segmenter": segmenter.segmenter_id,
            "tokenizer": segmenter.tokenizer_name,
            "max_tokens": segmenter.max_tokens,
            "seq": span.seq,
            "char_start": span.char_start,
            "char_end": span.char_end,
            "n_tokens": span.n_tokens,
            "input_tokens": span.input_tokens,
            "overlap_tokens": span.overlap_tokens,
            "text": text[span.char_start : span.char_end],
        }


def segment_documents(store: Store, doc_ids: list[str], segmenter: Segmenter, part: str) -> dict[str, int]:
    """Segment the documents not yet segmented this way; returns counts."""
    done = store.read("segments", columns=["doc_id"], where=pc.field("segmenter") == segmenter.segmenter_id).column(
        "doc_id"
    )
    todo = sorted(set(doc_ids) - set(done.to_pylist()))
    rows: list[dict[str, Any]] = []
    for doc_id, text in load_texts(store, todo).items():
        rows.extend(segment_rows(doc_id, text, segmenter))
    store.write_part("segments", rows, part)
    return {"documents_segmented": len(todo), "segments_new": len(rows)}
