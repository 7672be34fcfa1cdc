"""Token offsets of whole documents, tokenizing each distinct word only once.

A word-local tokenizer (tasks.segment.segmenter checks which are) gives a text the same tokens as the
concatenation of its units, cut before every space that follows a non-space character. Prose
repeats its words (3.25 MB of meetings and novels hold 625,000 units but 26,000 distinct ones),
so the distinct units are tokenized once, joined into a few long strings, and every document's
offsets are assembled from theirs in numpy: the same offsets as one pass over the documents for
a fraction of the tokenizer's work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tasks.segment.boundaries import code_points, whitespace_code_points

Encode = Callable[[list[str]], list[Any]]  # texts -> tokenizers Encodings, no special tokens


def split_units(text: str) -> tuple[list[str], np.ndarray]:
    """The text's units and their character starts. Unit 0 is `pieces[0]`; unit k > 0 is
    " " + `pieces[k]`, starting at the space before it."""
    pieces = text.split(" ")
    if len(pieces) == 1:
        return pieces, np.zeros(1, dtype=np.int64)
    codes = code_points(text)
    spaces = np.flatnonzero(codes == 32)
    before = codes[np.maximum(spaces - 1, 0)]
    valid = (spaces > 0) & ~np.isin(before, whitespace_code_points())
    if not valid.all():  # a space after whitespace is no cut: its piece joins the one before
        pieces = _join_runs(pieces, np.flatnonzero(~valid).tolist())
    return pieces, np.concatenate([np.zeros(1, dtype=np.int64), spaces[valid]])


def _join_runs(pieces: list[str], bad: list[int]) -> list[str]:
    """Pieces with every invalid cut j (between pieces j and j + 1) undone."""
    out: list[str] = []
    last, i = 0, 0
    while i < len(bad):
        j = i
        while j + 1 < len(bad) and bad[j + 1] == bad[j] + 1:
            j += 1
        first, stop = bad[i], bad[j] + 2
        out.extend(pieces[last:first])
        out.append(" ".join(pieces[first:stop]))
        last, i = stop, j + 1
    out.extend(pieces[last:])
    return out


def offsets_array(encoding: Any) -> np.ndarray:
    pairs = encoding.offsets
    flat = np.fromiter(itertools.chain.from_iterable(pairs), dtype=np.int64, count=2 * len(pairs))
    return flat.reshape(-1, 2)


def token_offsets(encode: Encode, texts: Sequence[str], chunk_chars: int = 1 << 15) -> list[np.ndarray]:
    """(start, end) character offsets of every token of each text, as one pass would give them."""
    split = [split_units(text) for text in texts]
    # A text's first unit (no leading space) and last unit (may end in whitespace) are
    # tokenized on their own; the units between go through the table of distinct units.
    table: dict[str, int] = {}
    for pieces, _ in split:
        table.update(dict.fromkeys(pieces[1:-1], 0))
    shared = list(table)
    table = {key: i for i, key in enumerate(shared)}
    solos: list[str] = []
    for pieces, _ in split:
        solos.append(pieces[0])
        if len(pieces) > 1:
            solos.append(" " + pieces[-1])

    lengths = np.fromiter(map(len, shared), dtype=np.int64, count=len(shared)) + 1
    chunks, firsts = _chunks(shared, lengths, chunk_chars)
    encodings = encode([" " + " ".join(shared[a:b]) for a, b in chunks] + solos) if chunks or solos else []
    counts, relative = _shared_tokens(encodings[: len(chunks)], chunks, firsts)
    solo_offsets = [offsets_array(e) for e in encodings[len(chunks) :]]
    counts = np.concatenate([counts, np.array([len(o) for o in solo_offsets], dtype=np.int64)])
    relative = np.concatenate([relative, *solo_offsets]) if solo_offsets else relative
    pointers = np.cumsum(counts) - counts

    out = []
    solo = len(shared)
    for pieces, starts in split:
        ids = [np.array([solo], dtype=np.int64)]
        solo += 1
        if len(pieces) > 1:
            middle = pieces[1:-1]
            ids.append(np.fromiter(map(table.__getitem__, middle), dtype=np.int64, count=len(middle)))
            ids.append(np.array([solo], dtype=np.int64))
            solo += 1
        unit_ids = np.concatenate(ids)
        per_unit = counts[unit_ids]
        owner = np.repeat(np.arange(len(unit_ids)), per_unit)
        within = np.arange(len(owner)) - (np.cumsum(per_unit) - per_unit)[owner]
        out.append(relative[pointers[unit_ids][owner] + within] + starts[owner][:, None])
    return out


def _chunks(shared: list[str], lengths: np.ndarray, chunk_chars: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Runs of distinct units of about `chunk_chars` characters (tokenized in parallel), and each
    unit's start inside its run's string."""
    if not shared:
        return [], np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    cuts = np.searchsorted(ends, np.arange(chunk_chars, int(ends[-1]), chunk_chars), side="right")
    bounds = sorted({0, *cuts.tolist(), len(shared)})
    chunks = list(itertools.pairwise(bounds))
    firsts = np.empty(len(shared), dtype=np.int64)
    for a, b in chunks:
        firsts[a:b] = np.cumsum(lengths[a:b]) - lengths[a:b]
    return chunks, firsts


def _shared_tokens(
    encodings: list[Any], chunks: list[tuple[int, int]], firsts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct unit: its number of tokens, and all their offsets relative to the unit."""
    counts = np.zeros(len(firsts), dtype=np.int64)
    relative = []
    for (a, b), encoding in zip(chunks, encodings, strict=True):
        offsets = offsets_array(encoding)
        unit = a + np.searchsorted(firsts[a:b], offsets[:, 0], side="right") - 1
        counts[a:b] = np.bincount(unit - a, minlength=b - a)
        relative.append(offsets - firsts[unit][:, None])
    return counts, (np.concatenate(relative) if relative else np.zeros((0, 2), dtype=np.int64))


Offsets = Callable[[str], np.ndarray]  # one text -> its (start, end) token offsets
PIECE_CHARS = 1 << 18  # a long text is tokenized this many characters at a time
LOOKAHEAD_CHARS = 1 << 10  # how far past a cut inside a word two encodings must agree
_CANDIDATES = 8  # cuts inside a word tried before the last one is taken


def piecewise_offsets(
    offsets: Offsets, text: str, word_local: bool, piece_chars: int = PIECE_CHARS
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Token starts and ends of a long text, tokenized `piece_chars` characters at a time: the
    tokenizer's own memory (tens of bytes per character) then never holds the whole text.

    A word-local tokenizer's pieces end before a space that follows a non-space, where its
    tokens are those of the whole text (tasks.segment.word_units): the same offsets as one pass.
    Elsewhere (no such space in a piece, or another tokenizer) a piece ends at a token start
    from which encoding again gives the piece's own tokens for LOOKAHEAD_CHARS (a tokenizer that
    marks every text's start, as Metaspace does, may never agree: the last candidate is taken,
    and the third value, False, tells the segmenter to trust none of these tokens)."""
    index = np.int32 if len(text) < 2**31 else np.int64
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    begin, exact = 0, True
    while begin < len(text):
        stop = begin + piece_chars
        if stop >= len(text):
            piece, begin = offsets(text[begin:]) + begin, len(text)
        elif word_local and (cut := _unit_cut(text, begin + 1, stop)) > begin:
            piece, begin = offsets(text[begin:cut]) + begin, cut
        else:
            piece, begin, agreed = _stitched(offsets, text, begin, stop)
            exact &= agreed
        starts.append(piece[:, 0].astype(index))
        ends.append(piece[:, 1].astype(index))
    empty = np.zeros(0, dtype=index)
    return np.concatenate([empty, *starts]), np.concatenate([empty, *ends]), exact


def _unit_cut(text: str, lo: int, hi: int) -> int:
    """The last space in text[lo:hi] that follows a non-space character, or -1."""
    at = text.rfind(" ", lo, hi)
    while at > lo and text[at - 1].isspace():
        at = text.rfind(" ", lo, at)
    return at if at > 0 and not text[at - 1].isspace() else -1


def _stitched(offsets: Offsets, text: str, begin: int, stop: int) -> tuple[np.ndarray, int, bool]:
    """The tokens of text[begin:] before a cut near `stop`, the cut, and whether encoding from
    the cut gave the piece's own tokens. The cut is a clean token start (not inside a character
    two tokens share): the latest up to `stop` that agrees, else the first after it."""
    while True:
        right = stop + LOOKAHEAD_CHARS
        piece = offsets(text[begin:right]) + begin
        if right >= len(text):
            return piece, len(text), True
        clean = np.flatnonzero((piece[1:, 0] > piece[:-1, 0]) & (piece[1:, 0] >= piece[:-1, 1])) + 1
        clean = clean[piece[clean, 0] > begin]
        early = clean[piece[clean, 0] <= stop]
        candidates = early[::-1][:_CANDIDATES] if early.size else clean[:_CANDIDATES]
        if candidates.size:
            break
        stop += stop - begin  # one token covers the piece (a word the model reads as one unknown)
    for k in candidates.tolist():
        cut = int(piece[k, 0])
        if np.array_equal(offsets(text[cut:right]) + cut, piece[k:]):
            return piece[:k], cut, True
    return piece[:k], cut, False


# Pre-tokenizers and normalizers that treat each whitespace-separated word on its own.
_WORD_LOCAL_PRETOKENIZERS = {
    "BertPreTokenizer",
    "ByteLevel",
    "Metaspace",
    "Whitespace",
    "WhitespaceSplit",
    "Punctuation",
    "Digits",
    "UnicodeScripts",
    "Sequence",
}
_CHAR_LOCAL_NORMALIZERS = {
    "BertNormalizer",
    "Lowercase",
    "NFC",
    "NFD",
    "NFKC",
    "NFKD",
    "StripAccents",
    "Strip",
    "Sequence",
    "Nmt",
}


def word_local_pipeline(tokenizer: Any) -> bool:
    """Whether the tokenizer's pre-tokenizers and normalizers all treat each word on its own: the
    first test of `Segmenter.word_local`, which then probes the tokenizer itself."""
    config = json.loads(tokenizer.backend_tokenizer.to_str())

    def types(node: Any) -> set[str]:
        if not node:
            return set()
        found = {node.get("type", "")}
        for child in node.get("pretokenizers", []) + node.get("normalizers", []):
            found |= types(child)
        return found

    pre, norm = types(config.get("pre_tokenizer")), types(config.get("normalizer"))
    return bool(pre) and pre <= _WORD_LOCAL_PRETOKENIZERS and norm <= _CHAR_LOCAL_NORMALIZERS
