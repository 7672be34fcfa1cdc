"""Report: what a run did, for people and for alerts. Reads `runs`, `documents`, `segments`,
`segment_labels`, `document_results` and `rejects` through the warehouse's query API (SQL over
the public tables); writes nothing to the data directory.

- `build_report` -> the run's figures as PNG charts and one self-contained HTML page;
- `run_figures` / `QualityThresholds` -> the figures the end-of-run event carries, and their
  judgement against the alerts' data-quality thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.datasets import Store
from tasks.report.charts import Chart, report_charts
from tasks.report.data import ReportData, ReportError, load_report, previous_documents
from tasks.report.page import report_html
from tasks.report.quality import QualityThresholds, RunFigures, run_figures


@dataclass(frozen=True)
class Report:
    data: ReportData
    charts: list[Chart]
    html: str


def build_report(store: Store, run_id: str | None = None, doc_id: str | None = None) -> Report:
    data = load_report(store, run_id, doc_id)
    charts = report_charts(data)
    return Report(data, charts, report_html(data, charts))


__all__ = [
    "Chart",
    "QualityThresholds",
    "Report",
    "ReportData",
    "ReportError",
    "RunFigures",
    "build_report",
    "previous_documents",
    "run_figures",
]
