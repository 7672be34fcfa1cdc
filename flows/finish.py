"""What a run says when it ends: the end-of-run event (`longdoc.run.finished`, with the run's
figures, for automations and dashboards) and the report's charts as Prefect artifacts.

Neither may fail the run: a figure that cannot be read is left out, a chart that cannot be drawn
is logged. The data-quality thresholds are the ones `longdoc alerts install` stored in a Prefect
variable (deployments/automations.yaml); the run judges its figures against them and labels its
event `longdoc.quality: ok | breached` (or `unchecked` when it did not complete), because
Prefect's triggers match labels but cannot compare numbers in a payload.
"""

from __future__ import annotations

import base64
from typing import Any

from prefect import get_run_logger

from flows.params import ProcessParams
from storage.datasets import Store
from tasks.report import QualityThresholds, RunFigures, build_report, previous_documents, run_figures

RUN_FINISHED = "longdoc.run.finished"
THRESHOLDS_VARIABLE = "longdoc_alert_thresholds"
CHART_ARTIFACT_PREFIX = "longdoc-chart-"


def run_resource(run_id: str, status: str, quality: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"longdoc.run.{run_id}",
        "prefect.resource.name": run_id,
        "longdoc.status": status,
        "longdoc.quality": quality,
    }


def stored_thresholds() -> QualityThresholds:
    from prefect.variables import Variable

    value = Variable.get(THRESHOLDS_VARIABLE, default=None)
    return QualityThresholds.from_mapping(value if isinstance(value, dict) else None)


def announce_run(params: ProcessParams, store: Store, run_id: str, status: str, counts: dict[str, Any]) -> RunFigures:
    """Emit the end-of-run event; Prefect relates it to the flow run, flow and deployment."""
    from prefect.events import emit_event

    logger = get_run_logger()
    try:
        previous = previous_documents(store, run_id, params.inputs)
    except Exception as exc:  # no warehouse yet, or a failed run's damaged one: no comparison
        logger.info("no previous run to compare with: %s", exc)
        previous = None
    figures = run_figures(counts, previous)
    breaches: list[str] = []
    quality = "unchecked"
    if status == "completed":
        try:
            breaches = stored_thresholds().breaches(figures)
            quality = "breached" if breaches else "ok"
        except Exception as exc:  # a hand-edited variable: say so, keep the event
            logger.warning("data-quality thresholds unreadable (%s); the run is not judged", exc)
    for breach in breaches:
        logger.warning("data quality: %s", breach)
    payload = figures.payload() | {"run_id": run_id, "status": status, "data_dir": params.data_dir}
    emit_event(RUN_FINISHED, resource=run_resource(run_id, status, quality), payload=payload | {"breaches": breaches})
    return figures


def publish_report(store: Store, run_id: str) -> None:
    """The report's charts, one image artifact each: the image is a data: URL, so the UI shows
    it with nothing stored outside Prefect's database (a markdown table lists them too)."""
    from prefect.artifacts import create_image_artifact, create_markdown_artifact

    try:
        report = build_report(store, run_id)
    except Exception as exc:
        get_run_logger().warning("report charts not drawn: %s", exc)
        return
    lines = ["| chart | artifact key |", "|---|---|"]
    for chart in report.charts:
        key = CHART_ARTIFACT_PREFIX + chart.key
        url = "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")
        create_image_artifact(url, key=key, description=chart.title)
        lines.append(f"| {chart.title} | `{key}` |")
    lines += ["", f"The whole page: `longdoc report {run_id} --out report.html`"]
    create_markdown_artifact("\n".join(lines) + "\n", key="longdoc-report", description="The run's report charts")
