"""N unique documents of about 2.3 KB, cut from the development corpus, for the lake benchmarks.

Usage: .venv/bin/python benchmarks/make_documents.py N OUT [--files K] [--tag TAG] [--corpus DIR]

Document i is a numbered header (the tag and i) followed by ~2.3 KB of QMSum meeting text,
starting at an offset that moves through the corpus by a step co-prime with its length: the
output is the same on every machine that has the corpus, and every document's text is new (no
two documents share a header), so ingest never skips one as known. Another tag makes another
set of new documents (the incremental benchmark's 10 documents, the second writer's half).

OUT is one JSONL file (K = 1) or a folder of K JSONL files of about N/K records each; records
are `{"id", "text", "n"}`, so each document's source_uri is `<file-uri>#<id>`.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DOCUMENT_CHARS = 2300
STEP = 7919  # chars between consecutive documents' starts; made co-prime with the text's length


def corpus_text(corpus: Path = CORPUS) -> str:
    """The meetings of qmsum.jsonl joined, in file order (12.9 MB of real, messy text)."""
    path = corpus / "qmsum.jsonl"
    if not path.is_file():
        raise SystemExit(f"the development corpus is absent: no {path} (pass --corpus DIR)")
    with path.open(encoding="utf-8") as lines:
        return "\n\n".join(json.loads(line)["text"] for line in lines if line.strip())


def documents(n: int, tag: str = "doc", text: str | None = None, first: int = 0) -> Iterator[dict[str, object]]:
    """Records `first` .. `first + n - 1` of the set named `tag`."""
    source = text if text is not None else corpus_text()
    step = STEP
    while math.gcd(step, len(source)) != 1:
        step += 1
    for i in range(first, first + n):
        start = (i * step) % (len(source) - DOCUMENT_CHARS)
        body = source[start : start + DOCUMENT_CHARS]
        yield {"id": f"{tag}-{i:07d}", "text": f"{tag} document {i}\n\n{body}", "n": i}


def write_documents(n: int, out: Path, files: int = 1, tag: str = "doc", corpus: Path = CORPUS) -> list[Path]:
    """Write the records as one JSONL file (files=1, `out` is the file) or as `files` JSONL files
    in the folder `out`; the paths written."""
    text = corpus_text(corpus)
    if files == 1:
        paths = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{tag}-{k:04d}.jsonl" for k in range(files)]
    out.parent.mkdir(parents=True, exist_ok=True)
    per_file = math.ceil(n / files)
    for k, path in enumerate(paths):
        first = k * per_file
        count = max(0, min(per_file, n - first))
        with path.open("w", encoding="utf-8") as sink:
            for record in documents(count, tag, text, first):
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="documents")
    parser.add_argument("out", type=Path, help="a .jsonl file, or a folder when --files > 1")
    parser.add_argument("--files", type=int, default=1, help="JSONL files to spread them over (default 1)")
    parser.add_argument("--tag", default="doc", help="names the set: another tag, other documents")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    paths = write_documents(args.n, args.out, args.files, args.tag, args.corpus)
    print(f"{args.n} documents in {len(paths)} file(s) under {args.out}")


if __name__ == "__main__":
    main()
