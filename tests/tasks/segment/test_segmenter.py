"""The segmenter's guarantees: exact offsets, budget, coverage, progress, boundaries."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import ConfigError
from tasks.segment.boundaries import PARAGRAPH, SENTENCE, WORD, cut_levels
from tasks.segment.segmenter import Segmenter
from tasks.segment.word_units import offsets_array, split_units, token_offsets
from tests.conftest import byte_bpe_tokenizer, unigram_tokenizer, wordpiece_tokenizer

TOKENIZERS = {"wordpiece": wordpiece_tokenizer(), "byte-bpe": byte_bpe_tokenizer(), "unigram": unigram_tokenizer()}


def check_invariants(seg: Segmenter, text: str) -> list:
    spans = seg.split(text)
    for span in spans:
        piece = text[span.char_start : span.char_end]
        assert piece == piece.strip() and piece, "segments hold no edge whitespace and are not empty"
        assert seg.count(piece) + seg.overhead_tokens <= seg.max_tokens, "budget"
        assert span.n_tokens == seg.count(piece)
        assert span.overlap_tokens <= seg.overlap_tokens
    starts = [s.char_start for s in spans]
    assert starts == sorted(set(starts)), "starts strictly increase"
    covered = bytearray(len(text))
    for span in spans:
        covered[span.char_start : span.char_end] = b"\x01" * (span.char_end - span.char_start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered characters at {missing[:5]}"
    return spans


PROSE = (
    "The committee met on Tuesday. It discussed the budget at length, and members asked questions!\n"
    "Then the chair closed the item.\n\n"
    "A second paragraph follows here, with more words about remote controls and batteries. "
) * 30


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@pytest.mark.parametrize(("max_tokens", "overlap"), [(32, 4), (64, 8), (128, 16)])
def test_prose_meets_every_invariant(name: str, max_tokens: int, overlap: int) -> None:
    seg = Segmenter(TOKENIZERS[name], name, max_tokens, overlap, overhead_tokens=2)
    spans = check_invariants(seg, PROSE)
    n = seg.count(PROSE)
    minimum = math.ceil((n - overlap) / (seg.budget - overlap))
    assert len(spans) <= 1.5 * minimum, (len(spans), minimum)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_cuts_prefer_sentence_and_paragraph_ends(name: str) -> None:
    seg = Segmenter(TOKENIZERS[name], name, 200, 0, overhead_tokens=0)  # windows that hold sentences
    spans = seg.split(PROSE)
    ends = [PROSE[s.char_end - 1] for s in spans[:-1]]
    assert all(ch in ".!" for ch in ends), ends


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_hard_text_survives(name: str) -> None:
    text = (
        "line one\r\nline two\u00a0with nbsp\u200b zero width, cafe\u0301 combining, family 👨‍👩‍👧 and flag 🇫🇷. "
        "Fake specials [SEP] <|endoftext|> <s> [CLS] stay text. 東京で会議がありました。予算について話しました！"
        "ภาษาไทยไม่มีช่องว่างเลยจริงๆ "
    ) * 8
    seg = Segmenter(TOKENIZERS[name], name, 24, 4, overhead_tokens=2)
    spans = check_invariants(seg, text)
    for span in spans:
        piece = text[span.char_start : span.char_end]
        assert "\ufffd" not in piece
        assert not piece.startswith(("\u0301", "\u200d", "\U0001f3fd"))


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_text_without_any_whitespace_is_cut_inside_words(name: str) -> None:
    text = "abcdefghij" * 300
    seg = Segmenter(TOKENIZERS[name], name, 40, 5, overhead_tokens=0)
    spans = check_invariants(seg, text)
    # WordPiece turns a word over 100 characters into one [UNK]; the others need many windows
    assert len(spans) >= math.ceil(seg.count(text) / seg.budget)


def test_special_token_lookalikes_are_counted_as_text() -> None:
    tok = TOKENIZERS["wordpiece"]
    seg = Segmenter(tok, "wp", 64, 0, overhead_tokens=2)
    assert seg.count("[SEP]") > 1  # split into ordinary pieces, not the one special id


def test_levels_rank_boundaries() -> None:
    text = "One two. Three\n\nFour"
    seg = Segmenter(TOKENIZERS["wordpiece"], "wp", 64, 0, overhead_tokens=0)
    offsets = seg.encode(text)
    levels, _ = cut_levels(text, np.array([o[0] for o in offsets]), np.array([o[1] for o in offsets]))
    at = {offsets[i][0]: levels[i] for i in range(1, len(offsets))}
    assert at[text.index("two")] == WORD
    assert at[text.index("Three")] == SENTENCE
    assert at[text.index("Four")] == PARAGRAPH
    assert at.get(text.index("wo"), 0) == 0  # inside a word, where the tiny vocabulary splits it


def test_bad_budgets_are_refused() -> None:
    tok = TOKENIZERS["wordpiece"]
    with pytest.raises(ConfigError):
        Segmenter(tok, "wp", 2, 0, overhead_tokens=2)
    with pytest.raises(ConfigError):
        Segmenter(tok, "wp", 20, 15, overhead_tokens=2)


ALPHABET = st.sampled_from([*list("abc xyz.!?\n\n  ,;é東京。😀👍🏽\u200d́\xa0\r"), "[SEP]", "<s>", "word "])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(ALPHABET, min_size=1, max_size=300),
    name=st.sampled_from(sorted(TOKENIZERS)),
    max_tokens=st.integers(min_value=6, max_value=48),
    data=st.data(),
)
def test_invariants_hold_for_generated_text(pieces: list[str], name: str, max_tokens: int, data) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=(max_tokens - 2) // 2))
    by_units = data.draw(st.booleans())  # distinct words tokenized once, or each text whole
    seg = Segmenter(TOKENIZERS[name], name, max_tokens, overlap, overhead_tokens=2, by_units=by_units)
    check_invariants(seg, "".join(pieces))


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(texts=st.lists(st.lists(ALPHABET, max_size=200).map("".join), min_size=1, max_size=4))
@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_word_units_give_the_tokens_of_one_pass(name: str, texts: list[str]) -> None:
    """Assembling offsets from distinct words must equal encoding each text whole."""
    seg = Segmenter(TOKENIZERS[name], name, 40, 6, overhead_tokens=2)
    assert seg.word_local, "the three test tokenizers split words independently"
    whole = [offsets_array(e) for e in seg._encode_batch(texts)]
    for chunk_chars in (1, 7, 1 << 15):  # distinct words joined into many strings or one
        by_units = token_offsets(seg._encode_batch, texts, chunk_chars=chunk_chars)
        assert all(np.array_equal(a, b) for a, b in zip(whole, by_units, strict=True))


def test_real_corpus_with_bert_tokenizer(corpus) -> None:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(corpus / "tokenizers" / "bert-base-cased.tokenizer.json"))
    text = (corpus / "gutenberg-romeo-and-juliet.txt").read_text(encoding="utf-8")[:60000]
    seg = Segmenter(tok, "bert-base-cased", 512, 64, overhead_tokens=2)
    spans = check_invariants(seg, text)
    n = seg.count(text)
    assert len(spans) <= 1.25 * math.ceil((n - 64) / (510 - 64))


def test_a_megabyte_without_whitespace_is_segmented() -> None:
    text = "".join(chr(0x61 + (i * 7) % 26) for i in range(1_000_000))
    seg = Segmenter(TOKENIZERS["byte-bpe"], "byte-bpe", 512, 64, overhead_tokens=2)
    spans = seg.split(text)
    assert spans[0].char_start == 0 and spans[-1].char_end == len(text)
    assert all(b.char_start < a.char_end for a, b in itertools.pairwise(spans))  # overlapping, no gaps
    assert max(s.input_tokens for s in spans) <= 512
    sample = spans[:: max(1, len(spans) // 20)]
    assert all(seg.count(text[s.char_start : s.char_end]) == s.n_tokens for s in sample)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_batching_does_not_change_segments(name: str) -> None:
    texts = [PROSE[:3000], "東京で会議がありました。" * 40, PROSE[1000:5000] + " [SEP] " * 5]
    seg = Segmenter(TOKENIZERS[name], name, 48, 6, overhead_tokens=2)
    assert seg.split_many(texts) == [seg.split(t) for t in texts] == [seg.split(t) for t in reversed(texts)][::-1]


def test_thread_count_does_not_change_segments(tmp_path) -> None:
    """The tokenizer's thread pool size must not change a single offset."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from tests.tasks.segment.test_segmenter import PROSE, TOKENIZERS\n"
        "from tasks.segment.segmenter import Segmenter\n"
        "seg = Segmenter(TOKENIZERS['byte-bpe'], 'b', 40, 5, overhead_tokens=2)\n"
        "texts = [PROSE[i * 700 : i * 700 + 2500] for i in range(6)]\n"
        "print(json.dumps([[list(vars(s).values()) for s in spans] for spans in seg.split_many(texts)]))\n"
    )
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "true"}
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 6


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_tokenizing_by_units_changes_nothing(name: str) -> None:
    text = " " + PROSE + "  spaced   out\u00a0text \n 東京で会議 " + PROSE[:2000] + " [SEP] <s> end. "
    whole = Segmenter(TOKENIZERS[name], name, 40, 6, overhead_tokens=2, by_units=False)
    units = Segmenter(TOKENIZERS[name], name, 40, 6, overhead_tokens=2)
    assert units.split(text) == whole.split(text)
    check_invariants(units, text)


def test_split_units_cut_only_after_non_space() -> None:
    text = "a b  c\n d e\u00a0 f "
    pieces, starts = split_units(text)
    units = [pieces[0]] + [" " + p for p in pieces[1:]]
    assert units == ["a", " b", "  c\n d", " e\u00a0 f", " "]
    assert "".join(units) == text
    assert [text[s : s + len(u)] for s, u in zip(starts.tolist(), units, strict=True)] == units


def _single_line(corpus, language: str, chars: int) -> str:
    """Real text on one line: the two books with every run of whitespace one space, or Chinese
    abstracts with no whitespace at all; numbered copies until `chars` characters."""
    import json
    import re

    if language == "en":
        books = ("gutenberg-romeo-and-juliet.txt", "gutenberg-a-room-with-a-view.txt")
        source = " ".join(" ".join((corpus / f).read_text(encoding="utf-8").split()) for f in books)
        joiner = " {n}. "
    else:
        lines = (corpus / "zh" / "csldcp_dev.jsonl").read_text(encoding="utf-8").splitlines()[:400]
        source = "".join(re.sub(r"\s+", "", json.loads(line)["text"]) for line in lines)
        joiner = "第{n}篇"
    copies = [source + joiner.format(n=n) for n in range(chars // len(source) + 1)]
    return "".join(copies)[:chars].strip()


def _bert(corpus) -> Segmenter:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(corpus / "tokenizers" / "bert-base-cased.tokenizer.json"))
    tok.model_max_length = 10**12
    return Segmenter(tok, "bert-base-cased", 512, 64, overhead_tokens=2)


@pytest.mark.parametrize(("language", "chars"), [("en", 1_200_000), ("zh", 150_000)])
def test_a_long_single_line_is_cut_as_one_pass_cuts_it(corpus, language: str, chars: int) -> None:
    """Tokenized in pieces (the memory bound), a long line gives the segments one pass gives."""
    import dataclasses

    text = _single_line(corpus, language, chars)
    assert "\n" not in text and (language == "en") == (" " in text)
    pieces = _bert(corpus)
    if language == "zh":  # under the default length: cut it in pieces all the same, inside words
        pieces = dataclasses.replace(pieces, long_chars=10_000, piece_chars=1 << 14)
    assert len(text) > pieces.long_chars
    one_pass = dataclasses.replace(pieces, long_chars=10**9)
    spans = pieces.split(text)
    assert spans == one_pass.split(text)
    assert spans[0].char_start == 0 and spans[-1].char_end == len(text)
    for a, b in itertools.pairwise(spans):
        assert b.char_start < a.char_end and 0 < b.overlap_tokens <= 64  # overlapping, no gaps
    for span in spans[:: max(1, len(spans) // 40)]:
        piece = text[span.char_start : span.char_end]
        assert pieces.count(piece) == span.n_tokens and span.input_tokens <= 512


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_pieces_keep_every_invariant(name: str) -> None:
    text = (
        "line one  line two\u00a0with nbsp\u200b zero width, cafe\u0301 combining, family 👨‍👩‍👧 flag 🇫🇷. "
        "Fake specials [SEP] <|endoftext|> <s> [CLS] stay text. 東京で会議がありました。予算について話しました！"
        "ภาษาไทยไม่มีช่องว่างเลยจริงๆ " + "abcdefghij" * 40
    ) * 12
    one_pass = Segmenter(TOKENIZERS[name], name, 24, 4, overhead_tokens=2)
    for piece_chars in (64, 300, 1000):
        pieces = Segmenter(TOKENIZERS[name], name, 24, 4, overhead_tokens=2, long_chars=100, piece_chars=piece_chars)
        spans = check_invariants(pieces, text)
        if name != "unigram":  # Metaspace marks each piece's start: its cuts inside words may move
            assert spans == one_pass.split(text)


def test_cut_levels_do_not_depend_on_the_block() -> None:
    text = "One two. Three\n\nFour  \n \n five” (six). 東京で。\r\nz👍🏽 e\u0301 " * 30
    seg = Segmenter(TOKENIZERS["byte-bpe"], "b", 64, 0, overhead_tokens=0)
    offsets = np.array(seg.encode(text))
    whole = cut_levels(text, offsets[:, 0], offsets[:, 1])
    for block in (1, 7, 100):
        levels, at_space = cut_levels(text, offsets[:, 0].astype(np.int32), offsets[:, 1].astype(np.int32), block)
        assert np.array_equal(levels, whole[0]) and np.array_equal(at_space, whole[1])


@pytest.mark.parametrize(("language", "chars", "limit"), [("en", 1_000_000, 15), ("zh", 300_000, 40)])
def test_memory_per_character_of_a_long_line_is_small(corpus, language: str, chars: int, limit: int) -> None:
    """What a longer line adds to the peak (Python and numpy memory, traced) is a few bytes a
    character: measured 8 (English) and 14 (Chinese); in one pass 20 and 130 (before pieces and
    cut levels in blocks: ~60 and ~150)."""
    import dataclasses
    import gc
    import tracemalloc

    seg = dataclasses.replace(_bert(corpus), long_chars=1 << 16, piece_chars=1 << 14)
    assert seg.word_local
    peaks = []
    for size in (chars, 2 * chars):
        text = _single_line(corpus, language, size)
        gc.collect()
        tracemalloc.start()
        seg.split(text)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert (peaks[1] - peaks[0]) / chars < limit, [p / 1e6 for p in peaks]


def test_pieces_of_a_tokenizer_that_is_not_word_local_keep_every_invariant() -> None:
    from tokenizers import normalizers

    tok = byte_bpe_tokenizer()
    tok.backend_tokenizer.normalizer = normalizers.Replace("ab", "ba")  # not known to be char-local
    text = (PROSE.replace("\n", " ") + " 東京で会議がありました。" + "abcdefghij" * 30) * 3
    pieces = Segmenter(tok, "bpe", 40, 6, overhead_tokens=2, long_chars=1000, piece_chars=700)
    assert not pieces.word_local and len(text) > pieces.long_chars
    check_invariants(pieces, text)
