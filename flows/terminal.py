"""What the CLI prints: the run report, the progress bar, the console they share."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.run.results import RunReport


def print_report(report: RunReport) -> None:
    from rich.table import Table

    from tasks.run.results import ClassifyResult, IngestResult, SummarizeResult

    results = report.results
    table = Table(title=f"longdoc run {report.run_id} ({report.status})")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("what it did")
    keys = {
        "ingest": ("documents", "documents_new", "documents_known", "rejects"),
        "shard": ("shards", "shards_cached"),
        "segment": (
            "classifier_segments_new",
            "classifier_max_tokens",
            "classifier_overlap_tokens",
            "summarizer_segments_new",
            "summarizer_max_tokens",
            "summarizer_overlap_tokens",
        ),
        "classify": ("segments_classified", "segments_fallback", "classify_tokens", "classify_truncated_tokens"),
        "summarize": (
            "segments_summarized",
            "summarize_output_tokens",
            "summarize_truncated_tokens",
            "segment_summaries_unclean",
            "summary_sentences",
            "summary_sentences_kept",
            "summary_sentences_removed_meta",
            "summary_sentences_removed_continuation",
            "summary_sentences_removed_unsupported",
        ),
        "aggregate": (
            "document_results_new",
            "summaries_merged",
            "document_summaries_unclean",
            "document_sentences_unsupported",
        ),
    }
    for stage, secs in report.stage_seconds.items():
        result = getattr(results, stage)
        shown = ((k, getattr(result, k, None)) for k in keys.get(stage, ()))
        table.add_row(stage, f"{secs:.1f}", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown if v is not None))
    out = console()
    out.print(table)
    ingest = results.ingest or IngestResult()
    classify, summarize = results.classify or ClassifyResult(), results.summarize or SummarizeResult()
    inferred = (classify.segments_classified or 0) + (summarize.segments_summarized or 0)
    if ingest.documents == 0:
        out.print("No documents found in the inputs.")
    elif inferred == 0 and not (results.aggregate and results.aggregate.document_results_new):
        out.print("Nothing new: every document already has results for this configuration; no inference ran.")
    tps = report.tokens_per_s
    out.print(
        f"config {report.config_id} · {report.seconds:.1f} s"
        + (f" · {tps:,.0f} model tokens/s" if tps else "")
        + f" · lake {report.data_dir}"
        + (f' · {ingest.rejects} rejected: longdoc query "select * from rejects"' if ingest.rejects else "")
    )
    if results.ingest:
        out.print(f"inputs: {ingest.files} files, {ingest.files_unchanged} unchanged since last seen")
    if ingest.rejects_by_reason:
        out.print("rejected: " + ", ".join(f"{r} {n}" for r, n in ingest.rejects_by_reason.items()))


@contextlib.contextmanager
def progress_bar() -> Iterator[None]:
    """A progress bar on a terminal, fed by the tasks' progress log records."""
    if not sys.stderr.isatty():
        yield
        return
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from flows.observe import PROGRESS_EXTRA

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bars: dict[str, Any] = {}

    class Feed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stage, done, total = getattr(record, PROGRESS_EXTRA, (None, 0, 0))
            if stage is None:
                return
            if stage not in bars:
                bars[stage] = [bar.add_task(stage, total=total), 0, 0, 0]  # task, offset, done, total
            entry = bars[stage]
            if done < entry[2]:  # the next shard's task began: count the finished one in
                entry[1] += entry[3]
            entry[2], entry[3] = done, total
            bar.update(entry[0], completed=entry[1] + done, total=entry[1] + total)

    feed = Feed()
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(feed)
    try:
        with bar:
            yield
    finally:
        logger.removeHandler(feed)


def console() -> Any:
    """Rich output; piped output is not cut to 80 columns."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)
