"""Redaction speed: characters per second of `redact` on plain prose (the development corpus:
two novels, meeting transcripts, Chinese text) and on generated text dense with personal values,
beside the time of reading the same text once with a regex (measured, not asserted).

Usage: .venv/bin/python benchmarks/redact_bench.py [CORPUS_DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.redact import RedactSettings, redact
from tests.tasks.redact.corpus import make_corpus


def texts(corpus: Path) -> dict[str, str]:
    prose = "\n".join(
        (corpus / f).read_text(encoding="utf-8")
        for f in ("gutenberg-romeo-and-juliet.txt", "gutenberg-a-room-with-a-view.txt")
    )
    meetings = (corpus / "qmsum.jsonl").read_text(encoding="utf-8")[:2_000_000]
    chinese = "\n".join(
        json.loads(line).get("text", "") for p in sorted((corpus / "zh").glob("*.jsonl")) for line in p.open()
    )[:1_000_000]
    dense = "\n".join(d.decode() for d in make_corpus(documents=200).files.values())
    return {"novels": prose, "meetings (jsonl)": meetings, "chinese": chinese, "dense personal data": dense}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = RedactSettings()
    print(f"{'text':22} {'chars':>10} {'found':>7} {'redact chars/s':>15} {'one regex pass chars/s':>23}")
    for name, text in texts(Path(args.corpus)).items():
        if not text:
            continue
        seconds, baseline = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = redact(text, settings)
            seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
            sum(1 for _ in re.finditer(r"\d+", text))
            baseline.append(time.perf_counter() - start)
        rate, base = len(text) / statistics.median(seconds), len(text) / statistics.median(baseline)
        print(f"{name:22} {len(text):>10,} {result.count:>7} {rate:>15,.0f} {base:>23,.0f}")


if __name__ == "__main__":
    main()
