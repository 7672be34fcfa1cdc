"""Boundary levels of every cut between two tokens, computed for a whole document at once.

A cut i lies before token i. Its level says how good a place it is to end a segment:
paragraph > line > sentence > word > inside a word; a cut inside a grapheme cluster is worse,
and a cut inside one code point (two byte-level tokens sharing a character) is never taken.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from dataclasses import dataclass

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


CUT_BLOCK = 1 << 18  # cuts whose levels are computed together: bounds the temporary arrays


def code_points(text: str) -> np.ndarray:
    """The text's code points in the smallest unsigned dtype that holds them: a 50 MB text costs
    50-200 MB here, not 200 MB plus the bytes object it is read from."""
    if text.isascii():  # constant time in CPython; one byte a character
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    step = 1 << 20
    parts = [
        np.frombuffer(text[i : i + step].encode("utf-32-le", "surrogatepass"), np.uint32)
        for i in range(0, len(text), step)
    ]
    dtype = np.uint16 if max(int(p.max()) for p in parts) < 0x10000 else np.uint32
    out = np.empty(len(text), dtype=dtype)
    for n, part in enumerate(parts):
        out[n * step : n * step + len(part)] = part
    return out


def _joins_previous(codes: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per position: does its character belong to the grapheme cluster of the one before it?"""
    here = codes[pos].astype(np.uint32)
    before = codes[np.maximum(pos - 1, 0)].astype(np.uint32)
    high = np.unique(here[here >= 0x300])
    marks = [c for c in high.tolist() if unicodedata.category(chr(c)) in ("Mn", "Me", "Mc")]
    joins = np.isin(here, marks)
    joins |= (here == 0x200D) | ((here >= 0xFE00) & (here <= 0xFE0F))  # ZWJ, variation selectors
    joins |= ((here >= 0x1F3FB) & (here <= 0x1F3FF)) | ((here >= 0xE0020) & (here <= 0xE007F))  # skin, tags
    crlf = (before == 13) & (here == 10)
    regional = _regional(before) & _regional(here)
    joins |= (pos > 0) & ((before == 0x200D) | crlf | regional)
    return joins


def _regional(codes: np.ndarray) -> np.ndarray:
    return (codes >= 0x1F1E6) & (codes <= 0x1F1FF)


def _no_space(codes: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(codes), dtype=bool)
    for lo, hi in NO_SPACE_SCRIPTS:
        mask |= (codes >= lo) & (codes <= hi)
    return mask


@dataclass
class _Chars:
    """What cut levels need of the characters: code points, whitespace, its runs and newlines.
    Runs and newlines are kept as positions, so the per-character memory is the code points and
    one mask."""

    codes: np.ndarray
    space: np.ndarray
    run_start: np.ndarray
    run_stop: np.ndarray
    newlines: np.ndarray

    @classmethod
    def of(cls, text: str) -> _Chars:
        codes = code_points(text)
        space = np.isin(codes, whitespace_code_points())
        index = np.int32 if len(codes) < 2**31 else np.int64
        first = space.copy()
        first[1:] &= ~space[:-1]
        last = space.copy()
        last[:-1] &= ~space[1:]
        newlines = _positions(codes == 10, index)
        return cls(codes, space, _positions(first, index), _positions(last, index) + 1, newlines)


def _positions(mask: np.ndarray, index: type[np.signedinteger]) -> np.ndarray:
    """np.flatnonzero in a small dtype, a block at a time: no int64 array of every position."""
    step = 1 << 22
    blocks = [np.flatnonzero(mask[i : i + step]).astype(index) + i for i in range(0, len(mask), step)]
    return np.concatenate([np.zeros(0, dtype=index), *blocks])


def cut_levels(
    text: str, starts: np.ndarray, ends: np.ndarray, block: int = CUT_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Levels of the cuts 0..n, and which cuts fall on whitespace (where the tokens on either
    side do not depend on each other). Computed `block` cuts at a time: the same levels, with
    temporaries bounded however long the text."""
    n = len(starts)
    levels = np.full(n + 1, PARAGRAPH, dtype=np.int8)
    at_space = np.ones(n + 1, dtype=bool)
    if n < 2:
        return levels, at_space
    chars = _Chars.of(text)
    for first in range(1, n, block):
        last = min(n, first + block)  # cuts first..last-1
        inner, touched = _inner_levels(chars, ends[first - 1 : last - 1], starts[first:last])
        levels[first:last] = inner
        at_space[first:last] = touched & (inner >= WORD)
    return levels, at_space


def _inner_levels(chars: _Chars, ends: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels of the cuts between tokens ending at `ends` and tokens starting at `starts`, and
    whether each touches whitespace."""
    codes, space = chars.codes, chars.space
    size = len(codes)
    a = ends.astype(np.int64)  # a cut lies between the end of one token (a) and the start of the next (b)
    b = starts.astype(np.int64)

    # The whitespace run a cut touches: the character at a, or the one before it.
    safe_a = np.clip(a, 0, size - 1)
    here = (a < size) & space[safe_a]
    before = (a > 0) & space[np.clip(a - 1, 0, size - 1)]
    touched = here | before
    pos = np.where(here, safe_a, np.clip(a - 1, 0, size - 1))
    if len(chars.run_start):
        found = np.searchsorted(chars.run_start, pos.astype(chars.run_start.dtype), side="right")  # no cast of runs
        rid = np.clip(found - 1, 0, len(chars.run_start) - 1)
        run_start, run_stop = chars.run_start[rid], chars.run_stop[rid]
        nl = np.searchsorted(chars.newlines, run_stop) - np.searchsorted(chars.newlines, run_start)
        prev = np.clip(run_start.astype(np.int64) - 1, 0, size - 1)
    else:  # no whitespace at all: no cut touches a run
        nl, prev = np.zeros(len(a), dtype=np.int64), np.zeros(len(a), dtype=np.int64)
    for _ in range(2):  # look past closing quotes and brackets
        prev = np.where(np.isin(codes[prev], CLOSERS) & (prev > 0), prev - 1, prev)
    ends_sentence = np.isin(codes[prev], SENTENCE_END)
    spaced = np.where(nl >= 2, PARAGRAPH, np.where(nl == 1, LINE, np.where(ends_sentence, SENTENCE, WORD)))

    left = codes[np.clip(a - 1, 0, size - 1)].astype(np.uint32)
    right = codes[np.clip(b, 0, size - 1)].astype(np.uint32)
    no_space = _no_space(left) | _no_space(right)
    unspaced = np.where(np.isin(left, CJK_SENTENCE_END), SENTENCE, np.where(no_space, WORD, INSIDE_WORD))
    unspaced = np.where((a == 0) | (b >= size), WORD, unspaced)

    inner = np.where(touched, spaced, unspaced).astype(np.int8)
    inside = b < size
    joins = _joins_previous(codes, np.clip(b, 0, size - 1))
    inner[inside & joins] = INSIDE_GRAPHEME
    inner[b < a] = SPLIT_CODE_POINT
    return inner, touched


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
