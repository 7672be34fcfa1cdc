"""Segmentation speed against one plain tokenizer pass over the same text (measured, not asserted).

Usage: .venv/bin/python benchmarks/segment_bench.py [CORPUS_DIR] [--repeats N]
Reads the development corpus (../shared/corpus by default) and the bert-base-cased tokenizer in it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.segment.segmenter import Segmenter


def corpus_texts(corpus: Path, n_meetings: int = 40) -> list[str]:
    texts = [
        (corpus / f).read_text(encoding="utf-8")
        for f in ("gutenberg-romeo-and-juliet.txt", "gutenberg-a-room-with-a-view.txt")
    ]
    with open(corpus / "qmsum.jsonl", encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            if n >= n_meetings:
                break
            texts.append(json.loads(line)["text"])
    return texts


def load_corpus(corpus: Path) -> tuple[Any, list[str]]:
    """The benchmark corpus and its WordPiece tokenizer (the file lowercases: it is uncased)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(corpus / "tokenizers" / "bert-base-cased.tokenizer.json"))
    tok.model_max_length = 10**12
    return tok, corpus_texts(corpus)


def violations(seg: Segmenter, text: str) -> int:
    spans = seg.split(text)
    bad = 0
    for span in spans:
        piece = text[span.char_start : span.char_end]
        bad += seg.count(piece) + seg.overhead_tokens > seg.max_tokens
    covered = bytearray(len(text))
    for span in spans:
        covered[span.char_start : span.char_end] = b"\x01" * (span.char_end - span.char_start)
    bad += sum(1 for i, ch in enumerate(text) if not ch.isspace() and not covered[i])
    return bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tok, texts = load_corpus(Path(args.corpus))
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    tokens = sum(len(e) for e in tok(texts, add_special_tokens=False)["input_ids"])

    def plain() -> None:  # one plain pass of the tokenizer itself, in parallel over the texts
        tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)

    rows = []
    for max_tokens, overlap in ((128, 16), (512, 64), (2048, 256)):
        seg = Segmenter(tok, "bert-base-cased", max_tokens, overlap, overhead_tokens=2)
        base, mine = [], []
        for _ in range(args.repeats):  # side by side, alternating, medians
            start = time.perf_counter()
            plain()
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            n_segments = sum(len(spans) for spans in seg.split_many(texts))
            mine.append(time.perf_counter() - start)
        minimum = sum(math.ceil((len(seg.encode(t)) - overlap) / (seg.budget - overlap)) for t in texts)
        bad = sum(violations(seg, t) for t in texts[:5])
        t_base, t_mine = statistics.median(base), statistics.median(mine)
        rows.append(
            (max_tokens, overlap, megabytes / t_mine, tokens / t_mine, t_base / t_mine, n_segments, minimum, bad)
        )
    print(
        f"corpus: {len(texts)} texts, {megabytes:.1f} MB, {tokens:,} tokens; "
        f"plain encode pass {megabytes / t_base:.2f} MB/s"
    )
    print("max/overlap  MB/s  tokens/s  ratio-to-plain  segments  minimum  violations(first 5 texts)")
    for r in rows:
        print(f"{r[0]:>4}/{r[1]:<4}  {r[2]:6.2f}  {r[3]:9,.0f}  {r[4]:5.2f}x  {r[5]:8}  {r[6]:7}  {r[7]}")
    linearity(tok, texts)


def linearity(tok: object, texts: list[str]) -> None:
    """An 8 MB document should take about 8x a 1 MB one."""
    joined = "\n\n".join(texts)
    seg = Segmenter(tok, "bert-base-cased", 512, 64, overhead_tokens=2)
    timings = {}
    for megabytes in (1, 8):
        doc = (joined * (1 + megabytes * 1_000_000 // len(joined)))[: megabytes * 1_000_000]
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            seg.split(doc)
            runs.append(time.perf_counter() - start)
        timings[megabytes] = statistics.median(runs)
    print(f"one document: 1 MB {timings[1]:.2f} s, 8 MB {timings[8]:.2f} s, ratio {timings[8] / timings[1]:.1f}x")


if __name__ == "__main__":
    main()
