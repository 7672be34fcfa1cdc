"""Result quality on QMSum: variants of the summarizer prompt, generation length, merge and label
aggregation, each scored beside the first-segment (truncation) baseline.

Runs the flow's own steps (no Prefect) into one data directory, so variants that share a
prompt share its segment summaries; merges and label aggregations are recomputed from them.
  .venv/bin/python benchmarks/quality_bench.py --ids qmsum-ES2005a,... --prompt p2 --data-dir /tmp/q
Prints one JSON line per (variant, metric); append them to a file with --out. With
--repair-stored, segment summaries stored before the flow repaired them are repaired first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "qmsum.jsonl"

PROMPTS = {
    "p2": (  # the prompt before this benchmark (PROMPT_VERSION 2)
        "You summarize documents in two or three sentences. You never continue the document.",
        'Document:\n"""\n{text}\n"""\n\nWrite a summary of the document above in two or three sentences.',
    ),
    "p3": (  # states the content itself: no "The document provides...", no transcript form
        "You summarize texts in plain prose. You state what the text says directly, in two or three "
        "sentences; you never describe the text itself, never continue it, and never write a name "
        "followed by a colon.",
        'Text:\n"""\n{text}\n"""\n\nSummarize the text above in two or three sentences. State its main '
        "points directly.",
    ),
}
MERGE_PROMPTS = {
    "m-same": None,  # the segment prompt again (the design before this benchmark)
    "m-notes": (
        "You write one summary of a whole document from notes on its parts, in plain prose. "
        "You state the facts directly and never mention the notes, the parts or the summary itself.",
        'Notes on consecutive parts of one document:\n"""\n{text}\n"""\n\nWrite one summary of the '
        "whole document in three to five sentences.",
    ),
}


def write_subset(ids: list[str], path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    chosen = [r for r in rows if r["id"] in set(ids)] if ids else rows
    with path.open("w", encoding="utf-8") as out:
        for r in chosen:
            out.write(json.dumps({k: r[k] for k in ("id", "text", "label", "summary")}) + "\n")
    return chosen


def pool(segments: list[tuple[int, int, dict[str, float]]], how: str) -> str:
    totals: Counter[str] = Counter()
    for n_tokens, overlap, scores in segments:
        weight = max(1, n_tokens - overlap)
        for label, p in scores.items():
            if how == "mean":
                totals[label] += weight * p
            elif how == "unweighted":
                totals[label] += p
            elif how == "logmean":
                totals[label] += weight * math.log(max(p, 1e-12))
            elif how == "max":
                totals[label] = max(totals[label], p)
        if how == "vote":
            totals[max(scores, key=lambda k: scores[k])] += weight
    return max(totals, key=lambda k: totals[k])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", default="", help="comma-separated QMSum ids (all when empty)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--prompt", default="p2", choices=sorted(PROMPTS))
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--template", default=None, help="zero-shot label template")
    parser.add_argument("--no-summarize", action="store_true")
    parser.add_argument("--merges", default="m-same,m-notes,x-central,x-lead")
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--repair-stored",
        action="store_true",
        help="repair the stored segment summaries (tasks/prose.py, each against its segment's text) "
        "before merging and scoring: summaries stored before the flow repaired them (PROMPT_VERSION < 4) "
        "scored as the flow now writes them",
    )
    args = parser.parse_args()

    import tasks.classify.classify as classify
    import tasks.summarize.summarize as summarize
    from flows.params import ProcessParams
    from storage.datasets import Store
    from tasks import language
    from tasks.aggregate.aggregate import doc_segment_summaries
    from tasks.run import pipeline, steps
    from tasks.scoring.scoring import Prediction, metric_rows, read_references

    system, user = PROMPTS[args.prompt]
    language.INSTRUCTIONS["en"] = language.Instruction(system, user)
    summarize.PROMPT_VERSION = f"bench-{args.prompt}"
    if args.template:
        classify.LABEL_TEMPLATE = args.template
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    subset = data.parent / f"{data.name}-{os.getpid()}-subset.jsonl"  # inputs inside the data dir are skipped
    write_subset([i for i in args.ids.split(",") if i], subset)
    refs = read_references(str(subset))
    labels = sorted({r.label for r in refs if r.label})
    params = ProcessParams(
        inputs=[str(subset)],
        data_dir=str(data),
        labels=labels,
        max_new_tokens=args.max_new_tokens,
        summarize=not args.no_summarize,
        device="cpu",
    )
    plan = params.make_plan()
    run_id = steps.new_run_id()
    timings: dict[str, float] = {}
    store = Store(str(data))
    doc_ids = steps.step_ingest(store, params.inputs, run_id).doc_ids
    shard = steps.step_shard(store, doc_ids, max(len(doc_ids), 1))[0]  # one shard: every document
    for stage in pipeline.shard_stages(plan)[:-1]:  # no aggregate: the pooling and merges are measured here
        timings[stage] = pipeline.run_stage(stage, store, plan, shard, run_id, "cpu").seconds
    timings.pop("segment")
    assert plan.classifier and plan.classifier_segments
    label_segments = _label_segments(store, plan, doc_ids)
    first_labels = {d: pool(segs[:1], "mean") for d, segs in label_segments.items()}
    seg_counts = {d: len(s) for d, s in label_segments.items()}
    results: list[dict[str, Any]] = []
    variant_base = {
        "prompt": args.prompt,
        "max_new_tokens": args.max_new_tokens,
        "template": classify.LABEL_TEMPLATE,
        "n_docs": len(refs),
        "repair_stored": args.repair_stored,
    }
    for how in ("mean", "unweighted", "logmean", "max", "vote"):
        preds = {
            d: Prediction(pool(segs, how), first_labels[d], seg_counts[d], None, None, 0)
            for d, segs in label_segments.items()
        }
        for row in metric_rows(refs, preds):
            results.append({**variant_base, "aggregation": how, **row})
    if plan.summarizer and plan.summarizer_segments:
        seg_summaries = doc_segment_summaries(
            store, doc_ids, plan.summarizer_segments.segmenter_id, plan.summarizer.model_id
        )
        if args.repair_stored:
            seg_summaries = _repaired(store, plan, doc_ids)
        for merge in [m for m in args.merges.split(",") if m]:
            start = time.perf_counter()
            merged = _merge(merge, plan, seg_summaries)
            seconds = time.perf_counter() - start
            preds = {d: Prediction(None, None, 0, merged[d], s[0], len(s)) for d, s in seg_summaries.items()}
            for row in metric_rows(refs, preds):
                results.append({**variant_base, "merge": merge, "merge_seconds": round(seconds, 1), **row})
            sample = next(iter(merged.values()))
            print(f"# {merge} sample: {sample[:600]}", file=sys.stderr)
    for r in results:
        r["timings"] = {k: round(v, 1) for k, v in timings.items()}
        print(json.dumps(r))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as out:
            out.writelines(json.dumps(r) + "\n" for r in results)


def _label_segments(store: Any, plan: Any, doc_ids: list[str]) -> dict[str, list[tuple[int, int, dict[str, float]]]]:

    segs = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq", "n_tokens", "overlap_tokens"],
        where={"segmenter": plan.classifier_segments.segmenter_id, "doc_id": doc_ids},
    ).to_pylist()
    labels = store.read(
        "segment_labels", columns=["segment_id", "scores"], where={"model": plan.classifier.model_id}
    ).to_pylist()
    scores = {r["segment_id"]: json.loads(r["scores"]) for r in labels}
    out: dict[str, list[tuple[int, int, dict[str, float]]]] = {}
    for s in sorted(segs, key=lambda s: (s["doc_id"], s["seq"])):
        out.setdefault(s["doc_id"], []).append((s["n_tokens"], s["overlap_tokens"], scores[s["segment_id"]]))
    return out


def _repaired(store: Any, plan: Any, doc_ids: list[str]) -> dict[str, list[str]]:
    """Per document, its segment summaries in order, each repaired against its segment's text."""

    from tasks.prose import repair_summary

    segs = store.read(
        "segments",
        columns=["segment_id", "doc_id", "seq", "text"],
        where={"segmenter": plan.summarizer_segments.segmenter_id, "doc_id": doc_ids},
    ).to_pylist()
    rows = store.read(
        "segment_summaries", columns=["segment_id", "summary"], where={"model": plan.summarizer.model_id}
    ).to_pylist()
    summary = {r["segment_id"]: r["summary"] for r in rows}
    out: dict[str, list[str]] = {}
    for seg in sorted(segs, key=lambda s: (s["doc_id"], s["seq"])):
        if seg["segment_id"] in summary:
            out.setdefault(seg["doc_id"], []).append(repair_summary(summary[seg["segment_id"]], seg["text"]))
    return out


def _merge(merge: str, plan: Any, seg_summaries: dict[str, list[str]]) -> dict[str, str]:
    from benchmarks.abstractive_merge import merge_summaries
    from tasks.aggregate.merge import select_sentences
    from tasks.inference.models import load_tokenizer
    from tasks.summarize.summarize import summarize_texts

    spec, seg_plan = plan.summarizer, plan.summarizer_segments
    tokenizer = load_tokenizer(spec.ref.path)

    def count(s: str) -> int:
        return len(tokenizer(s, add_special_tokens=False)["input_ids"])

    if merge.startswith("x-"):  # x-central, x-lead, x-central-3 (budget in multiples of max_new_tokens)
        parts = merge.split("-")
        factor = float(parts[2]) if len(parts) > 2 else 2.0
        budget = int(factor * spec.max_new_tokens)
        return {d: select_sentences(s, budget, count, parts[1]) for d, s in seg_summaries.items()}
    if merge == "concat":
        return {d: " ".join(s) for d, s in seg_summaries.items()}
    prompt = MERGE_PROMPTS[merge]
    merged = merge_summaries(
        seg_summaries,
        count=count,
        summarize=lambda texts: [s.text for s in summarize_texts(spec, texts, "cpu", prompt=prompt)],
        room=seg_plan.max_tokens - seg_plan.overhead_tokens,
    )
    return {d: m[0] for d, m in merged.items()}


if __name__ == "__main__":
    main()
