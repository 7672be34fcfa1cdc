"""Calibrate the evidence threshold (tasks/evidence.py) on the development corpus.

Supported pairs: a sentence against the text it was written from; unsupported: the same sentence
against another document of the same corpus (often on the same subject: product meetings about
remote controls, articles about context length, abstracts of one discipline).

- QMSum: each reference-summary sentence vs its own transcript / the next meeting's transcript.
- Chinese abstracts (zh/csldcp_dev.jsonl): the first sentence of an abstract vs the rest of it
  / the rest of another abstract of the same discipline (no verbatim copy either way).
- Chinese articles (zh/llm-context-articles.jsonl): a sentence vs its article with that sentence
  blanked out / the next article.

Prints the score distributions, precision/recall of "supported" at each threshold, and the
threshold with the best balanced accuracy over the three sets. Also: how many reference sentences
the summary filter (tasks/summarize/sentence_filter.py) would call meta-text or continuation
(its false alarms on human-written summaries).

    PYTHONPATH=. python benchmarks/evidence_calibration.py [--corpus ../shared/corpus] [--meetings 80]
        [--semantic-meetings 16]

`--semantic-meetings N` also scores the QMSum pairs of the first N meetings by meaning
(tasks/summarize/semantic_support.py, all-MiniLM-L6-v2: English only) and prints the same table
for the lexical score, the semantic one and their combinations on those pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from tasks.evidence import Evidence, split_sentences


def qmsum_pairs(corpus: Path, meetings: int) -> list[tuple[str, str, str, str]]:
    rows = [json.loads(line) for line in (corpus / "qmsum.jsonl").open()][:meetings]
    pairs = []
    for k, row in enumerate(rows):
        other = rows[(k + 1) % len(rows)]
        for sentence in split_sentences(row["summary"]):
            pairs.append(("qmsum", sentence, row["text"], other["text"]))
    return pairs


def abstract_pairs(corpus: Path, per_label: int) -> list[tuple[str, str, str, str]]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for line in (corpus / "zh" / "csldcp_dev.jsonl").open():
        row = json.loads(line)
        by_label[row["label"]].append(row["text"])
    pairs = []
    for texts in by_label.values():
        usable = [t for t in texts if len(split_sentences(t)) >= 3][: per_label + 1]
        for k in range(len(usable) - 1):
            first, *rest = split_sentences(usable[k])
            other = split_sentences(usable[k + 1])[1:]
            pairs.append(("zh-abstracts", first, "".join(rest), "".join(other)))
    return pairs


def article_pairs(corpus: Path, per_article: int) -> list[tuple[str, str, str, str]]:
    rows = [json.loads(line) for line in (corpus / "zh" / "llm-context-articles.jsonl").open()]
    pairs = []
    for k, row in enumerate(rows):
        text, other = row["text"], rows[(k + 1) % len(rows)]["text"]
        # Chinese prose only (no code, headings, tables), and not the articles' shared boilerplate
        candidates = [
            s
            for s in split_sentences(text)
            if len(s) >= 20 and _han_share(s) >= 0.5 and not s.startswith(("#", "|", "`")) and s not in other
        ]
        step = max(1, len(candidates) // per_article)
        for sentence in candidates[::step][:per_article]:
            pairs.append(("zh-articles", sentence, text.replace(sentence, " "), other))
    return pairs


def _han_share(text: str) -> float:
    return sum(1 for c in text if "\u4e00" <= c <= "\u9fff") / max(1, len(text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="../shared/corpus")
    parser.add_argument("--meetings", type=int, default=80)
    parser.add_argument("--abstracts-per-label", type=int, default=6)
    parser.add_argument("--sentences-per-article", type=int, default=40)
    parser.add_argument("--semantic-meetings", type=int, default=0)
    parser.add_argument("--semantic-units", type=int, default=1, help="spans of up to this many units (cost grows)")
    args = parser.parse_args()
    if args.semantic_meetings:
        semantic_table(qmsum_pairs(Path(args.corpus), args.semantic_meetings), args.semantic_units)
        return
    corpus = Path(args.corpus)
    pairs = qmsum_pairs(corpus, args.meetings)
    pairs += abstract_pairs(corpus, args.abstracts_per_label)
    pairs += article_pairs(corpus, args.sentences_per_article)
    start = time.perf_counter()
    cache: dict[str, Evidence] = {}
    scores: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    chars = 0
    for name, sentence, own, other in pairs:
        for text, supported in ((own, True), (other, False)):
            if text not in cache:
                cache.clear()  # pairs come grouped by text: keep one prepared text at a time
                cache[text] = Evidence(text)
            chars += len(text)
            scores[name].append((cache[text].support(sentence).score, supported))
    seconds = time.perf_counter() - start
    print(f"{len(pairs)} sentences, {2 * len(pairs)} searches over {chars:,} characters in {seconds:.1f} s")
    for name, values in scores.items():
        pos = [s for s, y in values if y]
        neg = [s for s, y in values if not y]
        print(
            f"{name}: n={len(pos)}  supported median {statistics.median(pos):.3f} "
            f"(q10 {_quantile(pos, 0.1):.3f})  unsupported median {statistics.median(neg):.3f} "
            f"(q90 {_quantile(neg, 0.9):.3f})"
        )
    print("\nthreshold | per set: precision / recall of 'supported', specificity | balanced accuracy (mean)")
    best = (0.0, 0.0)
    for step in range(20, 80, 5):
        threshold = step / 100
        cells, balanced = [], []
        for name, values in scores.items():
            p, r, spec = _rates(values, threshold)
            cells.append(f"{name} {p:.3f}/{r:.3f} {spec:.3f}")
            balanced.append((r + spec) / 2)
        mean = sum(balanced) / len(balanced)
        best = max(best, (mean, threshold))
        print(f"{threshold:.2f} | {' | '.join(cells)} | {mean:.3f}")
    print(f"\nbest balanced accuracy {best[0]:.3f} at threshold {best[1]:.2f}")
    _filter_false_alarms(corpus, args.meetings)


COMBINATIONS = {
    "lexical": lambda lex, sem: lex,
    "semantic": lambda lex, sem: sem,
    "mean": lambda lex, sem: (lex + sem) / 2,
    "max": lambda lex, sem: max(lex, sem),
    "min": lambda lex, sem: min(lex, sem),
}


def semantic_table(pairs: list[tuple[str, str, str, str]], max_units: int) -> None:
    """Lexical and semantic support of the same QMSum pairs, and their combinations."""
    import torch

    from tasks.inference.models import resolve
    from tasks.summarize.semantic_support import Embedder, SemanticEvidence

    torch.set_num_threads(2)
    ref = resolve("default", "classifier")
    embedder = Embedder.load(ref.path, ref.max_input_tokens)
    start = time.perf_counter()
    prepared: dict[str, tuple[Evidence, SemanticEvidence]] = {}
    by_text: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for _, sentence, own, other in pairs:
        by_text[(own, True)].append(sentence)
        by_text[(other, False)].append(sentence)
    scores: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    windows = 0
    for (text, supported), sentences in by_text.items():
        if text not in prepared:
            lexical = Evidence(text)
            prepared = {text: (lexical, SemanticEvidence(lexical, embedder, max_units))}  # texts come in meeting order
            windows += len(prepared[text][1].windows)
            print(f"  {len(prepared[text][1].windows)} spans embedded, {time.perf_counter() - start:.0f} s", flush=True)
        lexical, semantic = prepared[text]
        for sentence, sem in zip(sentences, semantic.supports(sentences), strict=True):
            lex = lexical.support(sentence).score
            for name, combine in COMBINATIONS.items():
                scores[name].append((combine(lex, sem.score), supported))
    seconds = time.perf_counter() - start
    print(f"{len(pairs)} QMSum sentences, {windows:,} spans embedded, {seconds:.0f} s")
    for name, values in scores.items():
        pos = [s for s, y in values if y]
        neg = [s for s, y in values if not y]
        print(
            f"{name}: supported median {statistics.median(pos):.3f} (q10 {_quantile(pos, 0.1):.3f}), "
            f"unsupported median {statistics.median(neg):.3f} (q90 {_quantile(neg, 0.9):.3f})"
        )
    print("\nthreshold | per score: precision / recall / specificity (balanced accuracy)")
    best: dict[str, tuple[float, float]] = {}
    for step in range(20, 90, 5):
        threshold = step / 100
        cells = []
        for name, values in scores.items():
            p, r, spec = _rates(values, threshold)
            cells.append(f"{name} {p:.3f}/{r:.3f}/{spec:.3f} ({(r + spec) / 2:.3f})")
            best[name] = max(best.get(name, (0.0, 0.0)), ((r + spec) / 2, threshold))
        print(f"{threshold:.2f} | {' | '.join(cells)}")
    for name, (accuracy, threshold) in best.items():
        print(f"best {name}: balanced accuracy {accuracy:.3f} at {threshold:.2f}")


def _filter_false_alarms(corpus: Path, meetings: int) -> None:
    """Reference sentences the summary filter would remove as meta-text or continuation."""
    from tasks.summarize.meta_text import meta_rewrite
    from tasks.summarize.sentence_filter import continuation

    rows = [json.loads(line) for line in (corpus / "qmsum.jsonl").open()][:meetings]
    total = meta = cont = 0
    for row in rows:
        for sentence in split_sentences(row["summary"]):
            total += 1
            rewritten = meta_rewrite(sentence)
            meta += rewritten != sentence
            cont += continuation(sentence, row["text"]) is not None
    print(f"QMSum reference sentences: {total}; meta-text (rewritten or dropped) {meta}; continuation {cont}")


def _rates(values: list[tuple[float, bool]], threshold: float) -> tuple[float, float, float]:
    tp = sum(1 for s, y in values if y and s >= threshold)
    fp = sum(1 for s, y in values if not y and s >= threshold)
    fn = sum(1 for s, y in values if y and s < threshold)
    tn = sum(1 for s, y in values if not y and s < threshold)
    return tp / max(1, tp + fp), tp / max(1, tp + fn), tn / max(1, tn + fp)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    main()
