"""What a run reports about itself: a markdown summary and a table of document results."""

from __future__ import annotations

from typing import Any

from storage.datasets import Store
from tasks.run.results import IngestResult, RunReport, SegmentResult, ShardResult, SummarizeResult

SUMMARY_PREVIEW_CHARS = 300


def run_summary_markdown(report: RunReport, rejects: list[dict[str, Any]]) -> str:
    """Documents, segments, tokens, time per stage and rejects, as markdown."""
    results = report.results
    ingest, shard = results.ingest or IngestResult(), results.shard or ShardResult()
    segment = results.segment or SegmentResult()
    segments = (segment.classifier_segments_new or 0) + (segment.summarizer_segments_new or 0)
    lines = [
        f"# longdoc run {report.run_id}: {report.status}",
        "",
        f"- documents: {ingest.documents} ({ingest.documents_new} new)",
        f"- segments made: {segments}; model tokens: {results.model_tokens:,}",
        f"- shards: {shard.shards} ({shard.shards_cached or 0} skipped as already finished)",
        *_sentence_line(results.summarize),
        f"- rejected inputs: {len(rejects)}",
        f"- config: `{report.config_id}`; wall time {report.seconds:.1f} s",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *(f"| {stage} | {secs:.1f} |" for stage, secs in report.stage_seconds.items()),
    ]
    if rejects:
        lines += ["", "| rejected input | reason | error |", "|---|---|---|"]
        lines += [f"| {r['source_uri']} | {r['reason']} | {_cell(r.get('error') or '')} |" for r in rejects]
    return "\n".join(lines) + "\n"


def _sentence_line(summarize: SummarizeResult | None) -> list[str]:
    """What the summary checks did to the generated sentences, when summaries were made."""
    if not summarize or not summarize.summary_sentences:
        return []
    return [
        f"- summary sentences: {summarize.summary_sentences} generated, {summarize.summary_sentences_kept} kept;"
        f" removed as meta-text {summarize.summary_sentences_removed_meta}, continuation"
        f" {summarize.summary_sentences_removed_continuation}, unsupported"
        f" {summarize.summary_sentences_removed_unsupported}"
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_rejects(store: Store, run_id: str) -> list[dict[str, Any]]:
    table = store.read("rejects", columns=["source_uri", "reason", "error"], where={"run_id": run_id})
    return list(table.to_pylist())


def document_result_rows(store: Store, config_id: str, doc_ids: list[str]) -> list[dict[str, Any]]:
    """One row per document of the run: title, label, score, segments and summary opening."""
    if not doc_ids:
        return []
    where = {"doc_id": doc_ids}
    results = store.read("document_results", where=where | {"config_id": config_id}).to_pylist()
    titles = store.read("documents", columns=["doc_id", "title", "source_uri"], where=where).to_pylist()
    by_id = {d["doc_id"]: d for d in titles}
    rows = []
    for result in sorted(results, key=lambda r: (by_id.get(r["doc_id"], {}).get("title") or "", r["doc_id"])):
        doc = by_id.get(result["doc_id"], {})
        summary = result.get("summary") or ""
        rows.append(
            {
                "doc_id": result["doc_id"],
                "title": doc.get("title") or doc.get("source_uri") or "",
                "label": result.get("label"),
                "label_score": round(result["label_score"], 3) if result.get("label_score") is not None else None,
                "n_segments": result.get("n_segments"),
                f"summary (first {SUMMARY_PREVIEW_CHARS} characters)": summary[:SUMMARY_PREVIEW_CHARS],
            }
        )
    return rows
