"""`longdoc evaluate DATA` and its flow `evaluate-documents`: `process-documents` on a labelled
file, then its scores beside the truncation baseline.

The processing is the very flow `longdoc run` runs (a subflow here), so an evaluation measures
what users get; the scores land in the `evaluations` table and in this flow run's artifacts.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.launch import fail, flow_run_settings, make_params
from flows.params import ProcessParams
from flows.process import process_documents
from flows.terminal import console, print_report, progress_bar
from tasks.run.plan import Plan
from tasks.run.results import RunReport


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@task(name="evaluate")
def evaluate_task(params: ProcessParams, plan: Plan, data: str, run_id: str) -> list[dict[str, Any]]:
    from storage.datasets import Store
    from tasks.scoring.scoring import evaluate_run, read_references, side_by_side

    rows = evaluate_run(Store(params.data_dir, params.catalog), plan, read_references(data), run_id, data)
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
def evaluate_documents(params: ProcessParams, data: str, plan: Plan | None = None) -> RunReport:
    """Process the labelled file as `longdoc run` would, then score the results (one plan for both)."""
    plan = plan or params.make_plan()
    report = process_documents(params, plan)
    return dataclasses.replace(report, evaluations=evaluate_task(params, plan, data, report.run_id))


def evaluate(args: argparse.Namespace) -> int:
    from tasks.scoring.scoring import read_references

    if args.redact:  # references are matched by the text's doc_id and scored against original summaries
        return fail("--redact does not go with evaluate: its labelled references are the original texts")
    refs = read_references(args.data)  # a bad file is one line here, before Prefect starts
    # Zero-shot labels default to the classes of the file, so predictions can match them.
    gold = sorted({r.label for r in refs if r.label})
    launched = make_params(args, [args.data], gold if len(gold) >= 2 else None)
    if isinstance(launched, int):
        return launched
    params, plan = launched
    from flows.exits import run_interruptibly

    with progress_bar(), flow_run_settings():
        report = run_interruptibly(lambda: evaluate_documents(params, args.data, plan))
    print_report(report)
    print_evaluation(report.run_id, report.evaluations)
    return 0


def print_evaluation(run_id: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from tasks.scoring.scoring import side_by_side

    table = Table(title=f"evaluation of run {run_id}: document results vs. first segment (truncation)")
    for column, justify in (
        ("metric", "left"),
        ("subset", "left"),
        ("documents", "right"),
        ("document", "right"),
        ("first segment", "right"),
        ("difference", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for metric, subset, n, doc, first in side_by_side(rows):
        diff = f"{doc - first:+.4f}" if doc is not None and first is not None else ""
        table.add_row(metric, subset, str(n), _fmt(doc), _fmt(first), diff)
    out = console()
    out.print(table)
    if not rows:
        out.print("Nothing to score: the file has no 'label' or 'summary' fields, or no results were produced.")
    out.print(f"All figures: longdoc query \"SELECT * FROM evaluations WHERE run_id = '{run_id}'\"")
