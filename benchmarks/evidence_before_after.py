"""Summary sentences before and after the sentence filter, on real model output.

Summarizes a few QMSum transcript excerpts and Chinese article excerpts with a real summarizer
(greedy, the project's prompt; Chinese text gets a Chinese instruction), then classifies every
sentence of the repaired output (what the summarize stage filters) as meta-text, continuation,
unsupported or wrong language (its script differs from the text's), and the same for the
sentences the filter keeps. Writes the outputs as JSON so thresholds can be studied again.

    PYTHONPATH=. nice -n 10 python benchmarks/evidence_before_after.py --summarizer default \\
        --corpus ../shared/corpus --english 6 --chinese 4 --max-new-tokens 80 --out /tmp/smollm2.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tasks.evidence import SUPPORT_THRESHOLD, Evidence, split_sentences
from tasks.language import INSTRUCTIONS, Instruction
from tasks.summarize.meta_text import meta_rewrite
from tasks.summarize.semantic_support import Embedder
from tasks.summarize.sentence_filter import continuation, filter_summary

V1_EN_USER = (
    'Text:\n"""\n{text}\n"""\n\n'
    "State the main points of the text above in two or three sentences. Begin with the subject "
    'itself, not with "The text" or "This".'
)
V1_ZH_USER = '文本：\n"""\n{text}\n"""\n\n请用两三句话概括上文，直接陈述其要点，不要以“本文”或“文章”开头。'
LIST_EN_USER = (
    'Text:\n"""\n{text}\n"""\n\n'
    "List the two or three most important facts, decisions or arguments above, one numbered sentence "
    "each. Each sentence states a fact about the subject itself."
)
LIST_ZH_USER = (
    '文本：\n"""\n{text}\n"""\n\n请列出上文最重要的两三个事实、决定或观点，每条一句，编号，直接陈述事实本身。'
)
QUESTION_EN_USER = (
    'Text:\n"""\n{text}\n"""\n\n'
    "What are the main facts, decisions and arguments above? Answer in two or three sentences."
)
QUESTION_ZH_USER = '文本：\n"""\n{text}\n"""\n\n上文的主要事实、决定和观点是什么？请用两三句话回答。'

# Prompt variants (issue 17: content-first output). "shipped": the instructions of tasks/language.py.
_EN, _ZH = INSTRUCTIONS["en"], INSTRUCTIONS["zh"]
VARIANTS: dict[str, dict[str, Instruction]] = {
    "v1": {  # the instructions before this measurement (no lead)
        "en": Instruction(_EN.system, V1_EN_USER),
        "zh": Instruction(_ZH.system, V1_ZH_USER),
    },
    "list": {  # a numbered list of facts, its first marker prefilled (the same in every language)
        "en": Instruction(_EN.system, LIST_EN_USER, "1."),
        "zh": Instruction(_ZH.system, LIST_ZH_USER, "1."),
    },
    "question": {  # asked what was said rather than to summarize
        "en": Instruction(_EN.system, QUESTION_EN_USER),
        "zh": Instruction(_ZH.system, QUESTION_ZH_USER),
    },
    "point": {  # the instruction of v1, the answer opened with a clause the model must complete
        "en": Instruction(_EN.system, V1_EN_USER, "The main point is that"),
        "zh": Instruction(_ZH.system, V1_ZH_USER, "主要观点是："),
    },
    "shipped": dict(INSTRUCTIONS),
}


def han_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if "\u4e00" <= c <= "\u9fff") / max(1, len(letters))


def excerpts(corpus: Path, english: int, chinese: int, chars: int) -> list[dict[str, str]]:
    """Transcript excerpts from the middle of the first meetings (whole lines), and article
    excerpts (whole paragraphs) from each Chinese article."""
    out = []
    meetings = [json.loads(line) for line in (corpus / "qmsum.jsonl").open()][: english * 5 : 5]
    for row in meetings:
        text = row["text"]
        start = text.find("\n", len(text) // 3) + 1
        end = text.rfind("\n", start, start + chars)
        out.append({"id": row["id"], "lang": "en", "text": text[start:end]})
    articles = [json.loads(line) for line in (corpus / "zh" / "llm-context-articles.jsonl").open()]
    for row in articles[:chinese]:
        text = row["text"]
        start = text.find("\n\n", len(text) // 5) + 2
        end = text.rfind("\n\n", start, start + chars // 2)
        out.append({"id": row["id"], "lang": "zh", "text": text[start:end]})
    return out


def classify(sentence: str, source: str, evidence: Evidence, follows_meta: bool = False) -> list[str]:
    """Every problem a sentence has (several may apply); `follows_meta`: the one before was meta."""
    problems = []
    rewritten = meta_rewrite(sentence, follows_meta)
    if rewritten != sentence:
        problems.append("meta")
    if continuation(sentence, source):
        problems.append("continuation")
    if evidence.support(rewritten or sentence).score < SUPPORT_THRESHOLD:
        problems.append("unsupported")
    if (han_share(sentence) > 0.5) != (han_share(source) > 0.5):
        problems.append("wrong_language")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--summarizer", default="default")
    parser.add_argument("--corpus", default="../shared/corpus")
    parser.add_argument("--english", type=int, default=6)
    parser.add_argument("--chinese", type=int, default=4)
    parser.add_argument("--chars", type=int, default=2400)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default="shipped", help=f"comma-separated, of {','.join(VARIANTS)}")
    parser.add_argument("--out", default="", help="JSON of the outputs; a variant's name is put before its suffix")
    parser.add_argument("--semantic", action="store_true", help="the filter with MiniLM support (English)")
    parser.add_argument("--from-json", default="", help="score the outputs a run wrote, generating nothing")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        report(saved["model"], saved["items"], 0.0, args.out, _embedder(args.semantic))
        return

    import torch

    from tasks.inference.models import resolve
    from tasks.summarize.summarize import SummarizerSpec, summarize_texts

    torch.set_num_threads(args.threads)
    spec = SummarizerSpec(resolve(args.summarizer, "summarizer"), max_new_tokens=args.max_new_tokens)
    for variant in args.variants.split(","):
        items = excerpts(Path(args.corpus), args.english, args.chinese, args.chars)
        start = time.perf_counter()
        for lang in ("en", "zh"):
            batch = [i for i in items if i["lang"] == lang]
            if batch:
                prompt = VARIANTS[variant][lang]
                summaries = summarize_texts(spec, [i["text"] for i in batch], "cpu", prompt=prompt)
                for item, summary in zip(batch, summaries, strict=True):
                    item["raw"], item["repaired"] = summary.raw, summary.text
        out = str(Path(args.out).with_suffix(f".{variant}.json")) if args.out else ""
        report(f"{spec.model_id} [{variant}]", items, time.perf_counter() - start, out, _embedder(args.semantic))


def _embedder(semantic: bool) -> Embedder | None:
    """all-MiniLM-L6-v2 (the default classifier) for the filter's semantic support, when asked."""
    if not semantic:
        return None
    from tasks.inference.models import resolve

    ref = resolve("default", "classifier")
    return Embedder.load(ref.path, ref.max_input_tokens)


def report(model: str, items: list[dict], seconds: float, out: str, embedder: Embedder | None = None) -> None:
    """Problems of the sentences before and after the filter; the outputs to `out` as JSON."""
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    n_before = n_after = rewritten = 0
    removed: dict[str, int] = {}
    for item in items:
        evidence = Evidence(item["text"])
        sentences = split_sentences(item["repaired"])
        filtered = filter_summary(item["repaired"], item["text"], 0, embedder=embedder)
        item["kept"] = [k.sentence for k in filtered.kept]
        item["removed"] = filtered.removed_examples
        rewritten += filtered.rewritten
        for reason, n in filtered.removed.items():
            removed[reason] = removed.get(reason, 0) + n
        n_before += len(sentences)
        n_after += len(filtered.kept)
        follows_meta = False
        for sentence in sentences:
            problems = classify(sentence, item["text"], evidence, follows_meta)
            follows_meta = "meta" in problems
            for problem in problems or ["clean"]:
                before[problem] = before.get(problem, 0) + 1
        for kept in filtered.kept:
            for problem in classify(kept.sentence, item["text"], evidence) or ["clean"]:
                after[problem] = after.get(problem, 0) + 1
    print(f"{model}: {len(items)} excerpts summarized in {seconds:.0f} s")
    print(f"sentences: {n_before} before the filter, {n_after} after")
    print(f"removed by the filter: {removed}; rewritten (lead-in stripped or said of the meeting): {rewritten}")
    for problem in ("meta", "continuation", "unsupported", "wrong_language", "clean"):
        b, a = before.get(problem, 0), after.get(problem, 0)
        print(f"  {problem:15} before {b:3} ({b / max(1, n_before):.0%})   after {a:3} ({a / max(1, n_after):.0%})")
    if out:
        Path(out).write_text(json.dumps({"model": model, "items": items}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
