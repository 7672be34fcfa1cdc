"""The `longdoc` command: run the flow, query the lake, list runs, rebuild, compact, report, alerts."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flows.launch import add_option, add_process_options, fail, flow_run_settings, make_params
from flows.terminal import console, print_report, progress_bar
from storage.sandbox import QueryLimits

if TYPE_CHECKING:
    from storage.datasets import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longdoc", description="Long documents through transformer models, into SQL.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ingest, segment, classify and summarize into the lake")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="file, directory or glob, local or URL")
    add_process_options(run)
    evaluate = sub.add_parser("evaluate", help="run on a labelled file and score it against the truncation baseline")
    evaluate.add_argument("data", metavar="DATA", help=".jsonl or .parquet records: text, label, summary")
    add_process_options(evaluate)

    query = sub.add_parser(
        "query",
        help="run one read-only SQL statement on the lake, in a sandbox",
        description="Run one read statement (SELECT, WITH, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE, "
        "or EXPLAIN of one) on the lake, as it stood after the last run that ended (or --as-of RUN_ID). SQL "
        "cannot reach files, URLs or extensions, nor change settings; memory, threads, time and printed rows "
        "are limited.",
    )
    query.add_argument("sql", metavar="SQL", help="one read statement")
    add_option(query, "data_dir")
    add_option(query, "catalog")
    query.add_argument("--as-of", metavar="RUN_ID", default=None, help="answer as the lake stood after that run")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    limits = QueryLimits()
    query.add_argument(
        "--max-rows",
        type=int,
        default=limits.rows,
        metavar="N",
        help=f"rows printed, 0 for all (default {limits.rows})",
    )
    query.add_argument(
        "--timeout", type=float, default=limits.seconds, metavar="S", help=f"seconds (default {limits.seconds:g})"
    )
    query.add_argument(
        "--memory-limit", default=limits.memory, metavar="SIZE", help=f"DuckDB memory limit (default {limits.memory})"
    )
    query.add_argument(
        "--threads", type=int, default=limits.threads, metavar="N", help=f"DuckDB threads (default {limits.threads})"
    )

    runs = sub.add_parser("runs", help="list recent runs")
    add_option(runs, "data_dir")
    add_option(runs, "catalog")
    rebuild = sub.add_parser(
        "rebuild",
        help="recover the lake: migrate an old data directory, close crashed runs, check data files, remake views",
    )
    add_option(rebuild, "data_dir")
    add_option(rebuild, "catalog")
    rebuild.add_argument(
        "--close-all-runs", action="store_true", help="also close runs in flight on other hosts (none must be running)"
    )
    compact = sub.add_parser("compact", help="merge small files, expire old snapshots and delete unneeded files")
    add_option(compact, "data_dir")
    add_option(compact, "catalog")
    add_option(compact, "retain_days")

    report = sub.add_parser("report", help="write a run's report as one self-contained HTML page")
    report.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (default: the latest that ended)")
    report.add_argument("--out", default="report.html", metavar="FILE", help="the page (default report.html)")
    report.add_argument(
        "--doc-id", metavar="DOC_ID", help="the document shown segment by segment (default: the longest)"
    )
    add_option(report, "data_dir")
    add_option(report, "catalog")

    alerts = sub.add_parser("alerts", help="Prefect automations that notify through a webhook")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    install = alerts_sub.add_parser(
        "install", help="create (or replace) the automations of deployments/automations.yaml on PREFECT_API_URL"
    )
    target = install.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook-url", metavar="URL", help="make (or update) a Custom Webhook block posting here")
    target.add_argument("--block", metavar="TYPE/NAME", help="an existing notification block, e.g. slack-webhook/ops")
    install.add_argument("--file", metavar="FILE", help="the alerts file (default deployments/automations.yaml)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from flows.exits import Interrupted, exit_interrupted
    from storage.datasets import StorageError
    from storage.warehouse import WarehouseError
    from tasks.errors import LongdocError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "evaluate":
            from flows.evaluate import evaluate

            return evaluate(args)
        if args.command == "alerts":
            return _alerts(args)
        return _warehouse_command(args)
    except (LongdocError, WarehouseError, StorageError) as exc:
        return fail(str(exc))
    except Interrupted as exc:
        print("longdoc: interrupted", file=sys.stderr)
        return exit_interrupted(exc)
    except KeyboardInterrupt:  # Ctrl-C before a flow started (while models load): nothing to stop
        print("longdoc: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, the shell's convention


def _warehouse_command(args: argparse.Namespace) -> int:
    """`query`, `runs` and `rebuild`: errors of the machine (a read-only or missing directory, an
    unreachable bucket, a damaged warehouse) are one line, never a traceback."""
    from storage.datasets import StorageError, Store
    from storage.warehouse import WarehouseError

    try:
        if args.command == "query":
            limits = QueryLimits(
                memory=args.memory_limit, threads=args.threads, seconds=args.timeout, rows=args.max_rows
            )
            return _query(Store(args.data_dir, args.catalog), args.sql, args.format, limits, args.as_of)
        if args.command == "runs":
            return _query(Store(args.data_dir, args.catalog), RUNS_SQL, "table", QueryLimits())
        if args.command == "compact":
            return _compact(Store(args.data_dir, args.catalog), args.retain_days)
        if args.command == "report":
            return _report(Store(args.data_dir, args.catalog), args.run_id, args.doc_id, args.out)
        return _rebuild(Store(args.data_dir, args.catalog), args.close_all_runs)
    except StorageError as exc:
        raise WarehouseError(str(exc)) from exc
    except OSError as exc:  # what the storage layer did not name itself
        raise WarehouseError(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from exc


RUNS_SQL = (
    "SELECT run_id, status, strftime(started_at, '%Y-%m-%d %H:%M') AS started, "
    "round(seconds, 1) AS seconds, counts->>'$.documents' AS docs, counts->>'$.documents_new' AS new, "
    "counts->>'$.rejects' AS rejects, config_id, snapshot_id FROM runs ORDER BY started_at DESC LIMIT 20"
)


def _rebuild(store: Store, close_all_runs: bool) -> int:
    from storage import warehouse

    if store.is_local and not os.path.isdir(store.fs_and_base[1]):
        return fail(f"no data directory at {store.fs_and_base[1]}: nothing to rebuild")
    done = warehouse.rebuild(store, close_all_runs)
    if done.migrated:
        print("migrated from Parquet parts: " + ", ".join(f"{t} {n}" for t, n in done.migrated.items()))
    if done.runs_closed:
        print(f"closed {len(done.runs_closed)} interrupted runs: " + ", ".join(done.runs_closed))
    print(f"views made again: {', '.join(done.views)}")
    if done.missing_files:
        for path in done.missing_files:
            print(f"longdoc: error: a data file the catalog names is missing: {path}", file=sys.stderr)
        return fail(f"{len(done.missing_files)} data files are missing: restore them from a backup")
    print(f"rebuilt the lake at {store.root}: every data file the catalog names is there")
    return 0


def _compact(store: Store, retain_days: float) -> int:
    from datetime import timedelta

    from storage import warehouse

    done = warehouse.compact(store, timedelta(days=retain_days))
    print("compacted: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in done.items()))
    return 0


def _report(store: Store, run_id: str | None, doc_id: str | None, out: str) -> int:
    from tasks.report import ReportError, build_report

    try:
        report = build_report(store, run_id, doc_id)
    except ReportError as exc:
        return fail(str(exc))
    with open(out, "w", encoding="utf-8") as page:
        page.write(report.html)
    print(f"report of run {report.data.run_id} written to {out}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flows.alerts import DEFAULT_FILE, AlertsError, install

    try:
        names = install(Path(args.file) if args.file else DEFAULT_FILE, args.webhook_url, args.block)
    except AlertsError as exc:
        return fail(str(exc))
    print("installed automations: " + ", ".join(names))
    return 0


def _run(args: argparse.Namespace) -> int:
    from storage.inputs import escape_text, valid_utf8

    if bad := [name for name in args.inputs if not valid_utf8(name)]:  # Prefect's parameters are JSON
        return fail(f"INPUT {escape_text(bad[0])} is not valid UTF-8: name its folder (it is then a bad-name reject)")
    launched = make_params(args, args.inputs)
    if isinstance(launched, int):
        return launched
    params, plan = launched
    from flows.exits import run_interruptibly
    from flows.process import process_documents

    with progress_bar(), flow_run_settings():
        report = run_interruptibly(lambda: process_documents(params, plan))
    print_report(report)
    return 0


def _query(store: Store, sql: str, fmt: str, limits: QueryLimits, as_of: str | None = None) -> int:
    from storage.warehouse import query

    columns, rows = query(store, sql, limits, as_of)
    cut = bool(limits.rows) and len(rows) > limits.rows
    rows = rows[: limits.rows] if cut else rows
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, ensure_ascii=False, indent=1))
    else:
        from rich.table import Table

        table = Table(show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")  # wrap long values, never cut them
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console().print(table)
        print(f"({len(rows)} rows{', more not shown' if cut else ''})")
    if cut:
        print(
            f"longdoc: note: output cut at {limits.rows} rows; --max-rows N shows more (0 for all), "
            "or page with LIMIT/OFFSET",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
