"""longdoc's segmenter beside peer text splitters: same corpus, same tokenizer, same token budget, one run.

Usage: .venv/bin/python benchmarks/segment_peers.py [CORPUS_DIR] [--repeats N] [--configs 128/16,512/64] [--json OUT]
Every method runs over all texts, `--repeats` times, interleaved (baselines, longdoc, peers, then again);
speeds are medians. Each peer gets max_tokens - 2 tokens of text (room for [CLS] and [SEP]) and overlap_tokens.
Invariants are checked here, on every text and from the chunks' text and offsets alone (no method's own counts):
budget (re-encoded with special tokens > max_tokens), provenance (text[start:end] != chunk, or no offset),
coverage (non-whitespace characters in no chunk), progress (start not after the previous start), overlap
(tokens of text[next start:previous end]; pairs sharing more than overlap_tokens).
Offsets: "own" = the method's own; "located" = found here with str.find after the previous chunk's start.
semantic-text-splitter's chunk indices are character offsets (checked on non-ASCII text with 0.33.1).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.segment_bench import load_corpus
from tasks.segment.segmenter import Segmenter

Chunks = list[list[tuple[int | None, int | None, str]]]  # per text: (start, end, chunk text)
WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


def located(text: str, pieces: list[str]) -> list[tuple[int | None, int | None, str]]:
    """Offsets found by searching each chunk after the previous chunk's start (for peers that give none)."""
    out: list[tuple[int | None, int | None, str]] = []
    after = 0
    for piece in pieces:
        start = text.find(piece, after)
        out.append((start, start + len(piece), piece) if start >= 0 else (None, None, piece))
        after = start + 1 if start >= 0 else after
    return out


def methods(tok: Any, max_tokens: int, overlap: int) -> tuple[dict[str, Callable[[list[str]], Any]], dict[str, str]]:
    """name -> run over all texts (each run builds its splitter: no warm caches), and how offsets were obtained."""
    size, backend = max_tokens - 2, tok.backend_tokenizer
    how = {"plain encode_batch": "-", "transformers tok()": "-", "langchain Recursive": "own (find)"}

    def plain(texts: list[str]) -> None:
        backend.encode_batch(texts, add_special_tokens=False)

    def transformers_call(texts: list[str]) -> None:
        tok(texts, add_special_tokens=False, return_offsets_mapping=True)

    def longdoc(texts: list[str]) -> Chunks:
        seg = Segmenter(tok, "bert-base-cased", max_tokens, overlap, overhead_tokens=2)
        return [
            [(s.char_start, s.char_end, t[s.char_start : s.char_end]) for s in spans]
            for t, spans in zip(texts, seg.split_many(texts), strict=True)
        ]

    def chonkie_token(texts: list[str]) -> Chunks:
        from chonkie import TokenChunker

        chunker = TokenChunker(backend, chunk_size=size, chunk_overlap=overlap)
        out = chunker.chunk_batch(texts, batch_size=len(texts), show_progress_bar=False)
        return [[(c.start_index, c.end_index, c.text) for c in chunks] for chunks in out]

    def chonkie_sentence(texts: list[str]) -> Chunks:
        from chonkie import SentenceChunker

        chunker = SentenceChunker(backend, chunk_size=size, chunk_overlap=overlap)
        return [[(c.start_index, c.end_index, c.text) for c in chunker.chunk(t)] for t in texts]

    def semchunk_(texts: list[str]) -> Chunks:
        import semchunk

        chunker = semchunk.chunkerify(tok, size)
        try:
            pieces, offsets = chunker(texts, offsets=True, overlap=overlap)
        except TypeError:  # a version without offsets (or overlap)
            how["semchunk"] = "located"
            return [located(t, cs) for t, cs in zip(texts, chunker(texts), strict=True)]
        return [[(a, b, c) for c, (a, b) in zip(cs, os, strict=True)] for cs, os in zip(pieces, offsets, strict=True)]

    def text_splitter(texts: list[str]) -> Chunks:
        from semantic_text_splitter import TextSplitter

        splitter = TextSplitter.from_huggingface_tokenizer(backend, size, overlap=overlap)
        return [[(a, a + len(c), c) for a, c in chunks] for chunks in splitter.chunk_all_indices(texts)]

    def langchain(texts: list[str]) -> Chunks:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tok, chunk_size=size, chunk_overlap=overlap, add_start_index=True
        )
        out = []
        for t in texts:  # start_index is -1 where LangChain's own str.find missed the chunk
            docs = splitter.create_documents([t])
            out.append(
                [
                    (d.metadata["start_index"], d.metadata["start_index"] + len(d.page_content), d.page_content)
                    for d in docs
                ]
            )
        return out

    runs = {
        "plain encode_batch": plain,
        "transformers tok()": transformers_call,
        "longdoc Segmenter": longdoc,
        "chonkie Token": chonkie_token,
        "chonkie Sentence": chonkie_sentence,
        "semchunk": semchunk_,
        "semantic-text-splitter": text_splitter,
        "langchain Recursive": langchain,
    }
    return runs, how


def score(tok: Any, texts: list[str], chunked: Chunks, max_tokens: int, overlap: int) -> dict[str, Any]:
    pieces, shared = [], []
    provenance = coverage = progress = 0
    for text, chunks in zip(texts, chunked, strict=True):
        edges = np.zeros(len(text) + 1, dtype=np.int32)
        prev: tuple[int, int] | None = None
        for start, end, piece in chunks:
            pieces.append(piece)
            if start is None or end is None or start < 0 or text[start:end] != piece:
                provenance += 1
            if start is None or end is None or start < 0:
                continue
            start, end = min(start, len(text)), min(max(start, end), len(text))  # offsets past the text
            edges[start] += 1
            edges[end] -= 1
            if prev is not None:
                progress += start <= prev[0]
                shared.append(text[start : prev[1]] if start < prev[1] else "")
            prev = (start, end)
        nonspace = ~np.isin(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), WHITESPACE)
        coverage += int(np.count_nonzero(nonspace & (np.cumsum(edges[:-1]) == 0)))
    encoded = tok(pieces, add_special_tokens=True, split_special_tokens=True)["input_ids"]
    over = [len(ids) > max_tokens for ids in encoded]
    counts = [len(ids) for ids in tok(shared, add_special_tokens=False, split_special_tokens=True)["input_ids"]]
    p10, med, p90 = (float(x) for x in np.percentile(counts, [10, 50, 90])) if counts else (math.nan,) * 3
    out = dict(budget=sum(over), provenance=provenance, coverage=coverage, progress=progress, n_pairs=len(counts))
    return out | dict(
        overlap_p10=p10, overlap_median=med, overlap_p90=p90, overlap_over=sum(c > overlap for c in counts)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default="128/16,512/64,2048/256", help="max_tokens/overlap_tokens,...")
    parser.add_argument("--json", dest="json_out", help="also write the rows here as JSON")
    args = parser.parse_args()
    tok, texts = load_corpus(Path(args.corpus))
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    n_tokens = [len(e.ids) for e in tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
    print(f"corpus: {len(texts)} texts, {megabytes:.2f} MB, {sum(n_tokens)} tokens; invariants scored on all texts")

    rows = []
    for config in args.configs.split(","):
        max_tokens, overlap = (int(x) for x in config.split("/"))
        budget = max_tokens - 2
        minimum = sum(math.ceil((n - overlap) / (budget - overlap)) for n in n_tokens)
        runs, how = methods(tok, max_tokens, overlap)
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        results: dict[str, Chunks | None] = {}
        errors: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, run in runs.items():
                if name in errors:
                    continue
                try:
                    start = time.perf_counter()
                    results[name] = run(texts)
                    seconds[name].append(time.perf_counter() - start)
                except Exception as exc:  # a peer that fails is reported in its row
                    errors[name] = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
        plain = statistics.median(seconds["plain encode_batch"])
        for name in runs:
            row: dict[str, Any] = {
                "max_tokens": max_tokens,
                "overlap_tokens": overlap,
                "method": name,
                "offsets": how.get(name, "own"),
                "error": errors.get(name),
            }
            if seconds[name] and name not in errors:
                median = statistics.median(seconds[name])
                row |= {
                    "seconds": median,
                    "mb_per_s": megabytes / median,
                    "tokens_per_s": sum(n_tokens) / median,
                    "x_plain": plain / median,
                }
                chunked = results.get(name)
                if chunked is not None:
                    row |= {"segments": sum(map(len, chunked)), "minimum": minimum}
                    row |= score(tok, texts, chunked, max_tokens, overlap)
            rows.append(row)
            print_row(row, header=len(rows) == 1)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def print_row(row: dict[str, Any], header: bool) -> None:
    spec = "config:9 method:22 offsets:10 MB/s:7 tok/s:9 xplain:6 segs:6 min:6 budget:6 prov:6 cover:7 prog:5"
    cols = [(c, int(w)) for c, w in (x.split(":") for x in (spec + " ovl10/50/90:12 >K:5").split())]
    if header:
        print(" ".join(f"{c:>{w}}" if i > 2 else f"{c:<{w}}" for i, (c, w) in enumerate(cols)))
    cells = [f"{row['max_tokens']}/{row['overlap_tokens']}", row["method"], row["offsets"]]
    if "seconds" in row:
        cells += [f"{row['mb_per_s']:.2f}", f"{row['tokens_per_s']:.3g}", f"{row['x_plain']:.3f}"]
    if "segments" in row:
        ovl = f"{row['overlap_p10']:.0f}/{row['overlap_median']:.0f}/{row['overlap_p90']:.0f}"
        cells += [row[k] for k in ("segments", "minimum", "budget", "provenance", "coverage", "progress")]
        cells += [ovl, row["overlap_over"]]
    line = " ".join(
        f"{c:>{w}}" if i > 2 else f"{c:<{w}}" for i, (c, (_, w)) in enumerate(zip(cells, cols, strict=False))
    )
    print(line + (f"  ERROR {row['error']}" if row["error"] else ""), flush=True)


if __name__ == "__main__":
    main()
