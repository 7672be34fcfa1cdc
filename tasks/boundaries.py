"""Boundary levels of every cut between two tokens, computed for a whole document at once.

A cut i lies before token i. Its level says how good a place it is to end a segment:
paragraph > line > sentence > word > inside a word; a cut inside a grapheme cluster is worse,
and a cut inside one code point (two byte-level tokens sharing a character) is never taken.
"""

from __future__ import annotations

import functools
import math
import unicodedata

import numpy as np

PARAGRAPH, LINE, SENTENCE, WORD, INSIDE_WORD, INSIDE_GRAPHEME, SPLIT_CODE_POINT = 4, 3, 2, 1, 0, -1, -2
SENTENCE_END = [ord(c) for c in ".!?…。！？｡"]
CJK_SENTENCE_END = [ord(c) for c in "。！？｡"]
CLOSERS = [ord(c) for c in "\"'”’)]»"]
NO_SPACE_SCRIPTS = [  # scripts written without spaces between words: any character boundary is a word boundary
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3000, 0x9FFF),  # CJK punctuation, kana, ideographs
    (0xAC00, 0xD7AF),  # Hangul
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x20000, 0x3FFFF),
]


@functools.cache
def whitespace_code_points() -> np.ndarray:
    """Every code point Python's str.isspace() accepts (29 of them)."""
    return np.array([c for c in range(0x3100) if chr(c).isspace()], dtype=np.uint32)


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _joins_previous(codes: np.ndarray) -> np.ndarray:
    """Per character: does it belong to the grapheme cluster of the character before it?"""
    joins = np.zeros(len(codes), dtype=bool)
    high = np.unique(codes[codes >= 0x300])
    marks = [c for c in high.tolist() if unicodedata.category(chr(c)) in ("Mn", "Me", "Mc")]
    joins |= np.isin(codes, marks)
    joins |= (codes == 0x200D) | ((codes >= 0xFE00) & (codes <= 0xFE0F))  # ZWJ, variation selectors
    joins |= ((codes >= 0x1F3FB) & (codes <= 0x1F3FF)) | ((codes >= 0xE0020) & (codes <= 0xE007F))  # skin, tags
    if len(codes) > 1:
        after_zwj = codes[:-1] == 0x200D
        crlf = (codes[:-1] == 13) & (codes[1:] == 10)
        regional = (codes >= 0x1F1E6) & (codes <= 0x1F1FF)
        joins[1:] |= after_zwj | crlf | (regional[:-1] & regional[1:])
    return joins


def _no_space(codes: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(codes), dtype=bool)
    for lo, hi in NO_SPACE_SCRIPTS:
        mask |= (codes >= lo) & (codes <= hi)
    return mask


def cut_levels(text: str, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels of the cuts 0..n, and which cuts fall on whitespace (where the tokens on either
    side do not depend on each other)."""
    n = len(starts)
    levels = np.full(n + 1, PARAGRAPH, dtype=np.int8)
    at_space = np.ones(n + 1, dtype=bool)
    if n < 2:
        return levels, at_space
    codes = code_points(text)
    size = len(codes)
    space = np.isin(codes, whitespace_code_points())
    a = ends[:-1].astype(np.int64)  # cut i (1..n-1) lies between ends[i-1] and starts[i]
    b = starts[1:].astype(np.int64)

    # The whitespace run a cut touches: the character at a, or the one before it.
    run_first = space & ~np.concatenate(([False], space[:-1]))
    run_id = np.cumsum(run_first) - 1
    run_start = np.flatnonzero(run_first)
    run_stop = np.flatnonzero(space & ~np.concatenate((space[1:], [False]))) + 1
    newlines = np.concatenate(([0], np.cumsum(codes == 10)))
    run_newlines = newlines[run_stop] - newlines[run_start]
    safe_a = np.clip(a, 0, size - 1)
    here = (a < size) & space[safe_a]
    before = (a > 0) & space[np.clip(a - 1, 0, size - 1)]
    touched = here | before
    pos = np.where(here, safe_a, np.clip(a - 1, 0, size - 1))
    rid = run_id[pos]
    if len(run_start):
        rid = np.clip(rid, 0, len(run_start) - 1)
        nl, prev = run_newlines[rid], np.clip(run_start[rid] - 1, 0, size - 1)
    else:  # no whitespace at all: no cut touches a run
        nl, prev = np.zeros(len(a), dtype=np.int64), np.zeros(len(a), dtype=np.int64)
    for _ in range(2):  # look past closing quotes and brackets
        prev = np.where(np.isin(codes[prev], CLOSERS) & (prev > 0), prev - 1, prev)
    ends_sentence = np.isin(codes[prev], SENTENCE_END)
    spaced = np.where(nl >= 2, PARAGRAPH, np.where(nl == 1, LINE, np.where(ends_sentence, SENTENCE, WORD)))

    left = codes[np.clip(a - 1, 0, size - 1)]
    right = codes[np.clip(b, 0, size - 1)]
    no_space = _no_space(left) | _no_space(right)
    unspaced = np.where(np.isin(left, CJK_SENTENCE_END), SENTENCE, np.where(no_space, WORD, INSIDE_WORD))
    unspaced = np.where((a == 0) | (b >= size), WORD, unspaced)

    inner = np.where(touched, spaced, unspaced).astype(np.int8)
    joins = _joins_previous(codes)
    inner[(b < size) & joins[np.clip(b, 0, size - 1)]] = INSIDE_GRAPHEME
    inner[b < a] = SPLIT_CODE_POINT
    levels[1:n] = inner
    at_space[1:n] = touched & (inner >= WORD)
    return levels, at_space


def choose_end(levels: np.ndarray, start: int, window: int, prev_end: int, min_fill: float) -> int:
    """The cut ending the segment that starts at token `start` (cut i = before token i)."""
    hi = start + window
    lo = min(max(start + max(1, math.ceil(window * min_fill)), prev_end + 1), hi)
    tail = levels[lo : hi + 1]
    best = int(tail.max())
    if best >= WORD:
        return hi - int(np.argmax(tail[::-1] == best))
    left = max(start, prev_end) + 1
    if left < lo:  # no word boundary late in the window: the latest one past the previous end
        found = np.flatnonzero(levels[left:lo] >= WORD)
        if found.size:
            return left + int(found[-1])
    for minimum in (INSIDE_WORD, INSIDE_GRAPHEME):  # one unit alone exceeds the budget
        found = np.flatnonzero(levels[start + 1 : hi + 1] >= minimum)
        if found.size:
            return start + 1 + int(found[-1])
    return hi


def choose_start(levels: np.ndarray, start: int, end: int, overlap: int) -> int:
    """Where the next segment starts: as close to `overlap` tokens back as a boundary allows."""
    first = max(start + 1, end - overlap)
    for minimum, last in ((SENTENCE, end - overlap // 2), (WORD, end)):
        if last > first:
            found = np.flatnonzero(levels[first:last] >= minimum)
            if found.size:
                return first + int(found[0])
    if levels[end] < WORD and end > first:  # the previous cut was inside a giant unit: overlap inside it too
        found = np.flatnonzero(levels[first:end] >= INSIDE_WORD)
        if found.size:
            return first + int(found[0])
    return end
