"""Document labels on Chinese text: the English default (MiniLM zero-shot) beside the zero-shot
decoder backend (label likelihood on an instruct model), on labelled Chinese abstracts.

Needs the development corpus (../shared/corpus/zh/csldcp_dev.jsonl: abstracts labelled with one
of 67 disciplines; for measurement only, never copied into the project). Long documents are
joined from abstracts of one discipline, cut by the classifier's own segmentation (the plan of
`--classifier default`, MiniLM's 256 tokens, as the automatic fallback sees them), every segment
scored by each backend, and pooled as the aggregate stage pools them (token-weighted mean).
Single abstracts are scored alone. Prints one JSON line per (backend, variant, unit):

  nice -n 10 .venv/bin/python benchmarks/zh_labels_bench.py --decoder /path/to/qwen --docs 2 --per-doc 6

Variants of the decoder: the labels shown in Chinese (the corpus's own names) or in English
(translated here), and the answer's log-probability averaged over its tokens (mean) or summed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.classify.decoder import Reduce

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "zh" / "csldcp_dev.jsonl"
# Five disciplines far apart (chance 0.2), with their English names for the English labels.
DISCIPLINES = {
    "地质学/地质资源与地质工程": "geology",
    "计算机科学与技术": "computer science",
    "食品科学与工程": "food science",
    "历史学": "history",
    "体育学": "sports science",
}


REDUCTIONS: tuple[Reduce, ...] = ("mean", "sum")


def load(per_label: int, offset: int = 0) -> dict[str, list[str]]:
    """`per_label` abstracts of each discipline, after skipping its first `offset`."""
    by_label: dict[str, list[str]] = {label: [] for label in DISCIPLINES}
    for line in CORPUS.open(encoding="utf-8"):
        row = json.loads(line)
        if row["label"] in by_label and len(by_label[row["label"]]) < offset + per_label:
            by_label[row["label"]].append(row["text"])
    return {label: texts[offset:] for label, texts in by_label.items()}


def accuracy(predicted: list[int], gold: list[int]) -> float:
    return sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def pooled(spans: list[Any], probs: list[list[float]]) -> int:
    """The document's label index, pooled as the aggregate stage pools segment labels."""
    from tasks.aggregate.aggregate import pool_labels

    per_segment = [
        (s.n_tokens, s.overlap_tokens, {str(k): v for k, v in enumerate(p)}) for s, p in zip(spans, probs, strict=True)
    ]
    return int(pool_labels(per_segment).label)


def calibrate_unk() -> None:
    """The [UNK] share of MiniLM's tokenizer on English and Chinese text of the corpus: where
    the fallback's threshold can lie (one JSON line per text kind, with quantiles)."""
    from tasks.classify.classify import unk_shares
    from tasks.inference.models import load_tokenizer, resolve

    tokenizer = load_tokenizer(resolve("default", "classifier").path)
    root = CORPUS.parents[1]

    def windows(text: str, size: int) -> list[str]:
        return [text[i : i + size] for i in range(0, len(text), size)]

    lines = lambda name: [json.loads(line)["text"] for line in (root / name).open(encoding="utf-8")]  # noqa: E731
    kinds = {
        "zh abstracts (csldcp, first 400)": lines("zh/csldcp_dev.jsonl")[:400],
        "zh articles, 600-char windows": [w for t in lines("zh/llm-context-articles.jsonl") for w in windows(t, 600)],
        "qmsum, 5 meetings, 1500-char windows": [w for t in lines("qmsum.jsonl")[:5] for w in windows(t, 1500)],
        "gutenberg, 1500-char windows": [
            w for f in root.glob("gutenberg-*.txt") for w in windows(f.read_text(encoding="utf-8"), 1500)
        ],
    }
    for kind, texts in kinds.items():
        shares = sorted(unk_shares(tokenizer, texts))
        quantiles = {
            f"p{q:02d}": round(shares[min(len(shares) - 1, len(shares) * q // 100)], 3) for q in (0, 1, 5, 50, 95)
        }
        print(json.dumps({"text": kind, "n": len(shares), **quantiles, "max": round(shares[-1], 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoder", default="default-decoder", help="decoder model (directory or name)")
    parser.add_argument("--docs", type=int, default=2, help="joined documents per discipline")
    parser.add_argument("--per-doc", type=int, default=6, help="abstracts per joined document")
    parser.add_argument("--offset", type=int, default=0, help="abstracts of each discipline skipped first")
    parser.add_argument("--singles", type=int, default=5, help="single abstracts per discipline (decoder)")
    parser.add_argument("--variants", default="zh,en", help="label languages for the decoder: zh, en")
    parser.add_argument("--units", default="joined,single", help="what the decoder scores: joined, single")
    parser.add_argument("--no-minilm", action="store_true", help="skip the English default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calibrate-unk", action="store_true", help="print MiniLM's [UNK] shares and stop")
    parser.add_argument("--out", help="append the JSON lines to this file too")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"the development corpus is absent: {CORPUS}")
    if args.calibrate_unk:
        calibrate_unk()
        return
    import torch

    torch.set_num_threads(args.threads)
    from tasks.classify.classify import ClassifierSpec, score_texts
    from tasks.classify.decoder import score_answers
    from tasks.inference.models import resolve
    from tasks.run.plan import make_plan

    zh_labels, en_labels = list(DISCIPLINES), list(DISCIPLINES.values())
    texts = load(args.docs * args.per_doc, args.offset)
    docs, doc_gold, singles, single_gold = [], [], [], []
    for k, label in enumerate(zh_labels):
        for d in range(args.docs):
            docs.append("\n\n".join(texts[label][d * args.per_doc : (d + 1) * args.per_doc]))
            doc_gold.append(k)
        singles += texts[label][: args.docs * args.per_doc]
        single_gold += [k] * (args.docs * args.per_doc)
    plan = make_plan("default", en_labels, None, None, None, 1, None)
    assert plan.classifier and plan.classifier_segments
    segmenter = plan.classifier_segments.segmenter()
    spans = [segmenter.split(doc) for doc in docs]
    seg_texts = [doc[s.char_start : s.char_end] for doc, doc_spans in zip(docs, spans, strict=True) for s in doc_spans]
    bounds = [0]
    for doc_spans in spans:
        bounds.append(bounds[-1] + len(doc_spans))
    load_avg = os.getloadavg()[0]

    def emit(backend: str, variant: str, unit: str, acc: float, n: int, seconds: float, extra: dict) -> None:
        line = json.dumps(
            {"backend": backend, "variant": variant, "unit": unit, "accuracy": round(acc, 3), "n": n}
            | {"seconds": round(seconds, 1), "seconds_per_item": round(seconds / n, 2), "load1": load_avg}
            | extra,
            ensure_ascii=False,
        )
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    def doc_accuracy(probs: list[list[float]]) -> float:
        predicted = [pooled(spans[d], probs[bounds[d] : bounds[d + 1]]) for d in range(len(docs))]
        return accuracy(predicted, doc_gold)

    # (a) the English default: MiniLM zero-shot with English labels (Chinese ones are mostly [UNK] to it)
    units = args.units.split(",")
    if not args.no_minilm:
        spec = ClassifierSpec(plan.classifier.ref, tuple(en_labels))
        score_texts(spec, ["warm up"], "cpu")
        start = time.perf_counter()
        seg_probs = [[s[label] for label in en_labels] for s, _, _ in score_texts(spec, seg_texts, "cpu")]
        emit("minilm", "en-labels", "joined", doc_accuracy(seg_probs), len(docs), time.perf_counter() - start, {})
        start = time.perf_counter()
        single_probs = [[s[label] for label in en_labels] for s, _, _ in score_texts(spec, singles, "cpu")]
        predicted = [max(range(5), key=p.__getitem__) for p in single_probs]
        seconds = time.perf_counter() - start
        emit("minilm", "en-labels", "single", accuracy(predicted, single_gold), len(singles), seconds, {})

    # (b) the decoder: labels in Chinese or English, mean or summed answer log-probability
    ref = resolve(args.decoder, "classifier")
    score_answers(ref, zh_labels, ["预热"], "cpu")
    pick = [i for i in range(len(singles)) if i % (args.docs * args.per_doc) < args.singles]
    for variant in args.variants.split(","):
        labels = zh_labels if variant == "zh" else en_labels
        if "joined" in units:
            start = time.perf_counter()
            answers = score_answers(ref, labels, seg_texts, "cpu")
            seconds = time.perf_counter() - start
            tokens = sum(a.n_input_tokens for a in answers)
            for reduce in REDUCTIONS:
                probs = [list(a.probabilities(labels, reduce).values()) for a in answers]
                extra = {"reduce": reduce, "decoder": ref.short_id, "segments": len(seg_texts), "tokens": tokens}
                emit("decoder", f"{variant}-labels", "joined", doc_accuracy(probs), len(docs), seconds, extra)
        if "single" in units:
            start = time.perf_counter()
            answers = score_answers(ref, labels, [singles[i] for i in pick], "cpu")
            seconds = time.perf_counter() - start
            tokens = sum(a.n_input_tokens for a in answers)
            gold = [single_gold[i] for i in pick]
            for reduce in REDUCTIONS:
                chosen = [a.probabilities(labels, reduce) for a in answers]
                predicted = [labels.index(max(c, key=c.__getitem__)) for c in chosen]
                extra = {"reduce": reduce, "tokens": tokens}
                emit("decoder", f"{variant}-labels", "single", accuracy(predicted, gold), len(pick), seconds, extra)


if __name__ == "__main__":
    main()
