"""The summary prompt before and after issue 17, on QMSum and Chinese segments (measured, not
asserted): the share of summaries that open with meta-text ("The text discusses ...",
"本文介绍了 ..."), the share written in another script than their text, and every output.

Usage: python benchmarks/summary_prompts.py MODEL_DIR [--english 4] [--chinese 3] [--tokens 600]
       [--max-new-tokens 80] [--variants before,after]

before: the English prompt of PROMPT_VERSION 4 for every text, the plain 4-gram repeat ban.
after:  the prompt in the text's language (tasks/language.py), the script-keeping ban.
Segments: the first --tokens tokens (cut at a line end) of the first meetings of QMSum and of
the first Chinese articles, all summarized in one batch per variant, greedy, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
BEFORE = (
    "You summarize texts in plain prose. You state what the text says directly, in two or three "
    "sentences; you never describe the text itself, never continue it, and never write a name "
    "followed by a colon.",
    'Text:\n"""\n{text}\n"""\n\nSummarize the text above in two or three sentences. State its main points directly.',
)
META = re.compile(
    r"^\s*(?:(?:the|this|in this|in the)\s+(?:given\s+|provided\s+)?"
    r"(?:text|document|article|passage|excerpt|transcript|conversation|discussion|summary|dialogue|segment)\b|"
    r"the speakers?\b|"
    r"本文|文章|这篇|该文|上文|文本|这段|此文)",
    re.IGNORECASE,
)


def segments(path: Path, count: int, tokens: int, tokenizer: object) -> list[str]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(out) == count:
                break
            text = json.loads(line)["text"]
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)  # type: ignore[operator]
            offsets = enc["offset_mapping"]
            end = offsets[min(tokens, len(offsets)) - 1][1]
            cut = text.rfind("\n", 0, end)
            out.append(text[: cut if cut > end // 2 else end])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--english", type=int, default=4)
    parser.add_argument("--chinese", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--variants", default="before,after")
    args = parser.parse_args()
    import torch

    import tasks.summarize.summarize as summarize
    from tasks.inference.engine import BatchLimits
    from tasks.inference.models import load_tokenizer, resolve
    from tasks.language import detect, script_counts

    torch.set_num_threads(1)
    ref = resolve(args.model, "summarizer")
    spec = summarize.SummarizerSpec(ref, args.max_new_tokens)
    tokenizer = load_tokenizer(ref.path)
    texts = segments(CORPUS / "qmsum.jsonl", args.english, args.tokens, tokenizer)
    texts += segments(CORPUS / "zh" / "llm-context-articles.jsonl", args.chinese, args.tokens, tokenizer)
    scripts = summarize.vocabulary_scripts
    for variant in args.variants.split(","):
        prompt = BEFORE if variant == "before" else None
        summarize.vocabulary_scripts = (lambda path: None) if variant == "before" else scripts  # type: ignore[assignment]
        start = time.perf_counter()
        out = summarize.summarize_texts(spec, texts, "cpu", limits=BatchLimits(16 * 1000, 8), prompt=prompt)
        seconds = time.perf_counter() - start
        meta = [bool(META.match(s.text)) for s in out]
        wrong = [detect(s.text) != detect(t) for s, t in zip(out, texts, strict=True)]
        latin_in_zh = [script_counts(s.text)["Latin"] for s, t in zip(out, texts, strict=True) if detect(t) == "zh"]
        print(
            f"== {variant}: {sum(meta)}/{len(out)} open with meta-text, {sum(wrong)}/{len(out)} in another language, "
            f"Latin letters in Chinese summaries {latin_in_zh}, {seconds:.0f} s, "
            f"{sum(s.n_output_tokens for s in out)} output tokens",
            flush=True,
        )
        for s, t, m in zip(out, texts, meta, strict=True):
            print(f"[{detect(t)}{' META' if m else ''}] {s.text}", flush=True)


if __name__ == "__main__":
    main()
