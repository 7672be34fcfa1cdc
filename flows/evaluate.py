"""The `evaluate-documents` flow: `process-documents` on a labelled file, then its scores.

The processing is the very flow `longdoc run` runs (a subflow here), so an evaluation measures
what users get; the scores land in the `evaluations` table and in this flow run's artifacts.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.params import ProcessParams
from flows.process import process_documents


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@task(name="evaluate")
def evaluate_task(params: ProcessParams, data: str, run_id: str) -> list[dict[str, Any]]:
    from tasks.scoring.scoring import evaluate_run, read_references, side_by_side

    rows = evaluate_run(params.data_dir, params.make_plan(), read_references(data), run_id, data)
    table = [
        {"metric": m, "subset": s, "documents": n, "document": _fmt(d), "first_segment": _fmt(f)}
        for m, s, n, d, f in side_by_side(rows)
    ]
    key = f"evaluation-{run_id.lower()}"
    create_table_artifact(table=table, key=key, description=f"longdoc evaluate {data} (run {run_id})")
    lines = ["| metric | subset | documents | document | first segment |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['metric']} | {r['subset']} | {r['documents']} | {r['document']} | {r['first_segment']} |" for r in table
    ]
    create_markdown_artifact(
        markdown=f"# Evaluation of run {run_id}\n\nData: `{data}`\n\n" + "\n".join(lines),
        key=f"{key}-summary",
        description="document results beside the first segment's (truncation baseline)",
    )
    return [{k: v for k, v in row.items() if k != "created_at"} for row in rows]


@flow(name="evaluate-documents", log_prints=True)
def evaluate_documents(params: ProcessParams, data: str) -> dict[str, Any]:
    """Process the labelled file as `longdoc run` would, then score the results."""
    report = process_documents(params)
    return report | {"evaluations": evaluate_task(params, data, report["run_id"])}
