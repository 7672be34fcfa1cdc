"""What a run shows while it works and after: logs, a progress artifact, a summary artifact,
and a table of document results."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from uuid import UUID

from prefect import get_run_logger

from storage.datasets import Store
from tasks.inference.engine import Progress
from tasks.run import report as run_report
from tasks.run.results import RunReport

PROGRESS_EXTRA = "longdoc_progress"  # log records that carry (stage, done, total) for the CLI's bar
PROGRESS_SECONDS = 2.0  # the least time between two progress log lines of one task, but for the last
# The least time between two moves of the progress artifact by one task. Each move made the
# stages around it slower, 0.5 s per run in all at 2 s (BENCHMARKS.md); the flow moves it to
# 100 when every shard is done.
ARTIFACT_SECONDS = 10.0
# Rows of the document-results table artifact: a run of 500k documents must not build (and send
# the server) a table of 500k rows; the lake has them all.
ARTIFACT_DOCUMENTS = 1000


@dataclass(frozen=True)
class ProgressSpec:
    """Where a task reports its progress: the run's progress artifact and its share of it."""

    artifact_id: str | None
    unit: int
    units: int


@dataclass(frozen=True)
class RunProgress:
    artifact_id: str | None
    units: int

    def unit(self, index: int) -> ProgressSpec:
        return ProgressSpec(self.artifact_id, index, self.units)


def start_progress(run_id: str, units: int) -> RunProgress:
    from prefect.artifacts import create_progress_artifact

    artifact = create_progress_artifact(
        progress=0.0, key="longdoc-progress", description=f"Inference progress of run {run_id}"
    )
    return RunProgress(str(artifact) if artifact else None, max(units, 1))


def progress_reporter(
    stage: str,
    spec: ProgressSpec | None,
    interval: float = PROGRESS_SECONDS,
    artifact_interval: float = ARTIFACT_SECONDS,
) -> Progress:
    """Reports a task's progress as log lines (the CLI's bar reads them), at most once a tenth
    of the work and once `interval` seconds, and at the end; the first batch is logged (the bar
    learns the total). It moves the run's progress artifact at most once a tenth and once
    `artifact_interval` seconds, so a task of a few seconds moves it not at all (`finish_progress`
    does at the end of the run). Each report costs the server work, not one per batch."""
    logger = get_run_logger()
    started = time.monotonic()
    logged = {"step": -1, "at": -math.inf}
    moved = {"step": 0, "at": started}

    def due(last: dict[str, float], step: int, now: float, finished: bool) -> bool:
        return step != last["step"] and (finished or now - last["at"] >= interval)

    def report(done: int, total: int) -> None:
        step, now, finished = 10 * done // max(total, 1), time.monotonic(), done >= total
        if due(logged, step, now, finished):
            logged.update(step=step, at=now)
            logger.info("%s: %d/%d", stage, done, total, extra={PROGRESS_EXTRA: (stage, done, total)})
        if spec and spec.artifact_id and step != moved["step"] and now - moved["at"] >= artifact_interval:
            from prefect.artifacts import update_progress_artifact

            moved.update(step=step, at=now)
            overall = 100.0 * (spec.unit + done / max(total, 1)) / spec.units
            update_progress_artifact(UUID(spec.artifact_id), min(overall, 100.0))

    return report


def finish_progress(progress: RunProgress) -> None:
    """Every shard is done: the progress artifact reads 100."""
    if progress.artifact_id:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(UUID(progress.artifact_id), 100.0)


def publish_artifacts(store: Store, report: RunReport, doc_ids: list[str]) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    rejects = run_report.run_rejects(store, report.run_id)
    create_markdown_artifact(
        run_report.run_summary_markdown(report, rejects), key="longdoc-run-summary", description="What the run did"
    )
    shown = doc_ids[:ARTIFACT_DOCUMENTS]
    rows = run_report.document_result_rows(store, report.config_id or "", shown)
    if rows:
        description = "Document results of this run"
        if len(doc_ids) > len(shown):
            description += f" (its first {len(shown):,} documents of {len(doc_ids):,}; `longdoc query` has all)"
        create_table_artifact(rows, key="longdoc-document-results", description=description)
