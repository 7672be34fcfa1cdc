"""`longdoc evaluate DATA`: the run, then its scores beside the truncation baseline."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli import console, flow_run_settings, make_params, print_report, progress_bar


def evaluate(args: argparse.Namespace) -> int:
    from tasks.scoring.scoring import read_references

    refs = read_references(args.data)  # a bad file is one line here, before Prefect starts
    # Zero-shot labels default to the classes of the file, so predictions can match them.
    gold = sorted({r.label for r in refs if r.label})
    params = make_params(args, [args.data], gold if len(gold) >= 2 else None)
    if isinstance(params, int):
        return params
    from flows.evaluate import evaluate_documents
    from flows.exits import run_interruptibly

    with progress_bar(), flow_run_settings():
        report = run_interruptibly(lambda: evaluate_documents(params, args.data))
    print_report(report)
    print_evaluation(report["run_id"], report["evaluations"])
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


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
