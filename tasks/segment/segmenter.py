"""The segmenter: token windows of at most `max_tokens` with overlap, cut at the best boundary.

Each document's tokens come from the consuming model's tokenizer: for a tokenizer that splits
words independently, each distinct word is tokenized once for the whole batch
(tasks.segment.word_units), otherwise the documents are encoded whole, in one batch; a document over
LONG_TEXT_CHARS is tokenized in pieces, so that neither the tokenizer nor the arrays built from
its offsets need more than a few bytes a character (a 50 MB line: BENCHMARKS.md). Every cut falls
between two tokens and is ranked (see tasks.segment.boundaries). Every segment's exact token count is
then proven: re-encoding its text (special tokens and prompt template added) gives at most
max_tokens. Where both ends of a segment fall on whitespace and the tokenizer splits words
independently, only the segment's first word needs re-encoding (the rest are the same tokens
as in the document); any other segment is re-encoded whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tasks.errors import ConfigError
from tasks.inference.worker import plain_backend
from tasks.segment.boundaries import choose_end, choose_start, cut_levels
from tasks.segment.word_units import PIECE_CHARS, offsets_array, piecewise_offsets, token_offsets, word_local_pipeline

SEGMENTER_VERSION = "2"
LONG_TEXT_CHARS = 1 << 20  # a text longer than this is tokenized in pieces (tasks.segment.word_units)
COUNT_BATCH = 256  # segments re-encoded together: the tokenizer's memory stays per batch
_PROBE = (
    " The committee met. It discussed “budgets” — café naïve 3.14 x2!\n\nNew   paragraph\tand [SEP] <s> "
    "end \n then. tail\u00a0 x  y\r\n 東京で 会議。 end "
)


@dataclass(frozen=True)
class Span:
    seq: int
    char_start: int
    char_end: int
    n_tokens: int
    input_tokens: int
    overlap_tokens: int


@dataclass
class _Doc:
    text: str
    starts: np.ndarray
    ends: np.ndarray
    levels: np.ndarray
    at_space: np.ndarray
    exact: bool = True  # its tokens are those of one pass (else no segment count trusts them)
    margin: int = 0


@dataclass(frozen=True)
class Segmenter:
    """How one model's segments are cut: its tokenizer, budget and overlap."""

    tokenizer: Any
    tokenizer_name: str
    max_tokens: int
    overlap_tokens: int
    overhead_tokens: int  # special tokens and prompt template around the text
    min_fill: float = 0.7  # a cut is searched first in the last 30% of the window
    by_units: bool = True  # word-local tokenizers: tokenize each distinct word once (tasks.segment.word_units)
    long_chars: int = LONG_TEXT_CHARS
    piece_chars: int = PIECE_CHARS
    _word_local: list[bool] = field(default_factory=list, compare=False, repr=False)

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

    def _encode_batch(self, texts: Sequence[str]) -> list[Any]:
        """Encodings without special tokens; text that looks like a special token is text. The
        worker's plain copy of the tokenizer encodes them: the shared tokenizer is only read."""
        return plain_backend(self.tokenizer).encode_batch(list(texts), add_special_tokens=False)

    def encode(self, text: str) -> list[tuple[int, int]]:
        """Token character offsets of `text`."""
        return [tuple(o) for o in self._encode_batch([text])[0].offsets]

    def count(self, text: str) -> int:
        return len(self._encode_batch([text])[0].ids)

    def counts(self, texts: Sequence[str]) -> list[int]:
        out: list[int] = []
        for first in range(0, len(texts), COUNT_BATCH):
            out.extend(len(e.ids) for e in self._encode_batch(texts[first : first + COUNT_BATCH]))
        return out

    @property
    def word_local(self) -> bool:
        """Whether a word's tokens never depend on the words around it, so a segment cut on
        whitespace re-encodes to the document's own tokens except for its first word."""
        if not self._word_local:
            self._word_local.append(self._check_word_local())
        return self._word_local[0]

    def _check_word_local(self) -> bool:
        if not word_local_pipeline(self.tokenizer):
            return False
        doc = self._prepare([_PROBE], by_units=False)[0]
        cuts = [i for i in range(1, len(doc.starts)) if doc.at_space[i]]
        windows = [(s, e) for s in [0, *cuts] for e in [*cuts, len(doc.starts)] if e > s]
        by_words = token_offsets(self._encode_batch, [_PROBE])[0]
        same_tokens = np.array_equal(by_words, np.stack([doc.starts, doc.ends], axis=1))
        return same_tokens and self._exact(doc, windows, trust=True) == self._exact(doc, windows, trust=False)

    def split(self, text: str) -> list[Span]:
        return self.split_many([text])[0]

    def split_many(self, texts: Sequence[str]) -> list[list[Span]]:
        """Segments of each text; the documents are tokenized together in one batch."""
        docs = self._prepare(texts)
        out: list[list[Span]] = [[] for _ in docs]
        todo = list(range(len(docs)))
        for _ in range(4):  # rarely more than one pass: a re-encoded segment over budget tightens its document
            retry = []
            for d in todo:
                spans = self._plan(docs[d])
                excess = max((s.n_tokens - self.budget for s in spans), default=0)
                if excess > 0:
                    docs[d].margin += excess
                    retry.append(d)
                else:
                    out[d] = spans
            todo = retry
            if not todo:
                break
        if todo:
            raise ConfigError(f"cannot fit {len(todo)} document(s) into {self.max_tokens} tokens with this tokenizer")
        return out

    def _prepare(self, texts: Sequence[str], by_units: bool = True) -> list[_Doc]:
        """Every text's token offsets, boundary levels and whitespace cuts. A word-local
        tokenizer gives each text the tokens of its words, so distinct words are tokenized
        once for all texts; any other tokenizer encodes the texts whole, in one batch. A text
        over `long_chars` is tokenized in pieces, so its memory stays a few bytes a character."""
        units = by_units and self.by_units and self.word_local
        # The word-local probe (by_units=False) is read in one pass: it decides how pieces are cut.
        long_chars = self.long_chars if by_units else len(max(texts, key=len, default=""))
        short = [text for text in texts if len(text) <= long_chars]
        if units:
            offsets = iter(token_offsets(self._encode_batch, short))
        else:
            offsets = iter([offsets_array(e) for e in self._encode_batch(short)])
        docs = []
        for text in texts:
            exact = True
            if len(text) > long_chars:
                pieces = self._piece_offsets(units)
                starts, ends, exact = piecewise_offsets(pieces, text, self.word_local, self.piece_chars)
            else:
                pairs = next(offsets)
                starts, ends = pairs[:, 0].copy(), pairs[:, 1].copy()
            levels, at_space = cut_levels(text, starts, ends)
            docs.append(_Doc(text, starts, ends, levels, at_space, exact))
        return docs

    def _piece_offsets(self, units: bool) -> Callable[[str], np.ndarray]:
        if units:
            return lambda piece: token_offsets(self._encode_batch, [piece])[0]
        return lambda piece: offsets_array(self._encode_batch([piece])[0])

    def _plan(self, doc: _Doc) -> list[Span]:
        n = len(doc.starts)
        if n == 0:  # nothing the tokenizer keeps (e.g. only zero-width characters)
            lo, hi = _char_span(doc, 0, 0)
            return [Span(0, lo, hi, 0, self.overhead_tokens, 0)] if hi > lo else []
        window = max(1, self.budget - doc.margin)
        bounds: list[tuple[int, int]] = []
        start, prev_end = 0, 0
        while True:
            end = n if start + window >= n else choose_end(doc.levels, start, window, prev_end, self.min_fill)
            bounds.append((start, end))
            if end == n:
                break
            first_char = _char_span(doc, start, end)[0]
            start, prev_end = self._next_start(doc.levels, start, end), end
            while start < end and _char_span(doc, start, n)[0] <= first_char:
                start += 1  # whitespace-only tokens at the front: starts must move forward
        counts = self._exact(doc, bounds, trust=self.word_local and doc.exact)
        spans: list[Span] = []
        prev = 0
        for (start, end), count in zip(bounds, counts, strict=True):
            lo, hi = _char_span(doc, start, end)
            if hi > lo:  # a window of whitespace alone is no segment
                overlap = max(0, prev - start) if spans else 0
                spans.append(Span(len(spans), lo, hi, count, count + self.overhead_tokens, overlap))
            prev = end
        return spans

    def _exact(self, doc: _Doc, bounds: list[tuple[int, int]], trust: bool) -> list[int]:
        """Exact token counts of each window's text: from the document's own tokens plus a
        re-encoded first word where the ends lie on whitespace (`trust`), else re-encoded whole."""
        whole: list[str] = []
        first_words: list[str] = []
        plan: list[tuple[str, int, int]] = []
        for start, end in bounds:
            lo, hi = _char_span(doc, start, end)
            safe = trust and doc.at_space[start] and doc.at_space[end] and hi > lo
            if not safe:
                plan.append(("whole", len(whole), 0))
                whole.append(doc.text[lo:hi])
                continue
            word_end = _word_end(doc.text, lo, hi)
            first = _search(doc.ends, lo, "right")
            after_word = _search(doc.starts, word_end, "left")
            inside = _search(doc.starts, hi, "left") - first
            plan.append(("word", len(first_words), inside - (after_word - first)))
            first_words.append(doc.text[lo:word_end])
        whole_counts, word_counts = self.counts(whole), self.counts(first_words)
        return [whole_counts[i] if kind == "whole" else word_counts[i] + rest for kind, i, rest in plan]

    def _next_start(self, levels: np.ndarray, start: int, end: int) -> int:
        if self.overlap_tokens == 0:
            return end
        return choose_start(levels, start, end, self.overlap_tokens)


def _search(offsets: np.ndarray, value: int, side: Literal["left", "right"]) -> int:
    """np.searchsorted with the value in the array's own dtype: a Python int would make numpy
    cast the whole (int32) array to int64 on every call."""
    return int(np.searchsorted(offsets, offsets.dtype.type(value), side=side))


def _word_end(text: str, lo: int, hi: int) -> int:
    """The end of the first whitespace-separated word of text[lo:hi]."""
    space = text.find(" ", lo, hi)
    for ch in "\n\t\r\u00a0\u3000":
        other = text.find(ch, lo, space if space != -1 else hi)
        if other != -1:
            space = other
    return hi if space == -1 else space


def _char_span(doc: _Doc, start: int, end: int) -> tuple[int, int]:
    """The characters of tokens [start, end), including uncounted characters up to the next
    token (the tokenizer may drop some), without leading or trailing whitespace."""
    text, n = doc.text, len(doc.starts)
    lo = 0 if start == 0 else int(doc.starts[start])
    hi = len(text) if end == n else int(doc.starts[end])
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi
