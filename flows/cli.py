"""The `longdoc` command: run the flow, query the warehouse, list runs, rebuild."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from flows.params import ProcessParams, default_data_dir
from storage.sandbox import QueryLimits


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longdoc", description="Long documents through transformer models, into SQL.")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=default_data_dir(), help="datasets and warehouse (env LONGDOC_DATA_DIR)")

    def run_options(p: argparse.ArgumentParser) -> None:
        data_dir(p)
        p.add_argument("--labels", help="comma-separated zero-shot labels")
        p.add_argument("--classifier", default="default", help="HF id, local directory, or 'default'")
        p.add_argument("--summarizer", default="default", help="HF id, local directory, or 'default'")
        p.add_argument("--max-tokens", type=int, help="segment budget (default: each model's own)")
        p.add_argument("--overlap-tokens", type=int, help="overlap between segments (default: max/8)")
        p.add_argument("--max-new-tokens", type=int, default=80, help="summary length limit")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        p.add_argument("--no-classify", action="store_true")
        p.add_argument("--no-summarize", action="store_true")
        p.add_argument("--max-document-mb", type=float, default=64, help="per-document size limit (default 64)")
        p.add_argument("--max-pages", type=int, default=2000, help="PDF page limit (default 2000)")
        p.add_argument(
            "--task-runner", default="threads", help="threads, dask (a local cluster), or a Dask scheduler address"
        )
        p.add_argument("--workers", type=int, default=1, help="threads, or processes of the local Dask cluster")
        p.add_argument("--shard-documents", type=int, default=200, help="documents per shard (the unit of work)")

    run = sub.add_parser("run", help="ingest, segment, classify, summarize and load the warehouse")
    run.add_argument("inputs", nargs="+", metavar="INPUT", help="file, directory or glob, local or URL")
    run_options(run)
    evaluate = sub.add_parser("evaluate", help="run on a labelled file and score it against the truncation baseline")
    evaluate.add_argument("data", metavar="DATA", help=".jsonl or .parquet records: text, label, summary")
    run_options(evaluate)

    query = sub.add_parser(
        "query",
        help="run one read-only SQL statement on the warehouse, in a sandbox",
        description="Run one read statement (SELECT, WITH, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE, "
        "or EXPLAIN of one) on the warehouse. SQL cannot reach files, URLs or extensions, nor change settings; "
        "memory, threads, time and printed rows are limited.",
    )
    query.add_argument("sql", metavar="SQL", help="one read statement")
    data_dir(query)
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
    data_dir(runs)
    rebuild = sub.add_parser("rebuild", help="recreate the DuckDB warehouse from the Parquet datasets")
    data_dir(rebuild)
    return parser


def _fail(message: str) -> int:
    print(f"longdoc: error: {message}", file=sys.stderr)
    return 2


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
            from flows.evaluate_cli import evaluate

            return evaluate(args)
        return _warehouse_command(args)
    except (LongdocError, WarehouseError, StorageError) as exc:
        return _fail(str(exc))
    except Interrupted as exc:
        print("longdoc: interrupted", file=sys.stderr)
        return exit_interrupted(exc)
    except KeyboardInterrupt:  # Ctrl-C before a flow started (while models load): nothing to stop
        print("longdoc: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, the shell's convention


def _warehouse_command(args: argparse.Namespace) -> int:
    """`query`, `runs` and `rebuild`: errors of the machine (a read-only or missing directory, an
    unreachable bucket, a damaged warehouse) are one line, never a traceback."""
    from storage.datasets import StorageError
    from storage.warehouse import WarehouseError

    try:
        if args.command == "query":
            limits = QueryLimits(
                memory=args.memory_limit, threads=args.threads, seconds=args.timeout, rows=args.max_rows
            )
            return _query(args.data_dir, args.sql, args.format, limits)
        if args.command == "runs":
            return _query(args.data_dir, RUNS_SQL, "table", QueryLimits())
        return _rebuild(args.data_dir)
    except StorageError as exc:
        raise WarehouseError(str(exc)) from exc
    except OSError as exc:  # what the storage layer did not name itself
        raise WarehouseError(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from exc


RUNS_SQL = (
    "SELECT run_id, status, strftime(started_at, '%Y-%m-%d %H:%M') AS started, "
    "round(seconds, 1) AS seconds, counts->>'$.documents' AS docs, counts->>'$.documents_new' AS new, "
    "counts->>'$.rejects' AS rejects, config_id FROM runs ORDER BY started_at DESC LIMIT 20"
)


def _rebuild(data_dir: str) -> int:
    from storage import warehouse
    from storage.datasets import Store

    store = Store(data_dir)
    if store.is_local and not os.path.isdir(store.fs_and_base[1]):
        return _fail(f"no data directory at {store.fs_and_base[1]}: nothing to rebuild from")
    added = warehouse.sync(store, rebuild=True)
    skipped = warehouse.skipped_parts(store)
    print(
        f"rebuilt {warehouse.warehouse_path(store)}: "
        + ", ".join(f"{t} {n}" for t, n in added.items())
        + (f"; skipped {len(skipped)} part files that do not match their table (see the warnings)" if skipped else "")
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from storage.inputs import escape_text, valid_utf8

    if bad := [name for name in args.inputs if not valid_utf8(name)]:  # Prefect's parameters are JSON
        return _fail(f"INPUT {escape_text(bad[0])} is not valid UTF-8: name its folder (it is then a bad-name reject)")
    params = make_params(args, args.inputs)
    if isinstance(params, int):
        return params
    from flows.exits import run_interruptibly
    from flows.process import process_documents

    with progress_bar(), flow_run_settings():
        report = run_interruptibly(lambda: process_documents(params))
    print_report(report)
    return 0


@contextlib.contextmanager
def flow_run_settings() -> Iterator[None]:
    """Prefect's settings for a flow run started here. Without PREFECT_API_URL the run reports to
    a temporary server that stops with this process, so no one could act on its heartbeats, and
    they cost time: Prefect's heartbeat thread sleeps in one-second steps and a flow run waits
    for it to wake before returning, 0.5 s on average (BENCHMARKS.md). A server of your own keeps
    them, at Prefect's interval. Either way an error the CLI ends with in one line is logged
    without its traceback."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.exits import known_errors_without_tracebacks

    if PREFECT_API_URL.value():
        with known_errors_without_tracebacks():
            yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), known_errors_without_tracebacks():
        yield


def make_params(args: argparse.Namespace, inputs: list[str], labels: list[str] | None = None) -> ProcessParams | int:
    """The flow's parameters from `run`'s options, checked before Prefect starts (an exit code
    when they are wrong: a model or budget problem is one line here)."""
    from pydantic import ValidationError

    try:
        params = ProcessParams(
            inputs=inputs,
            data_dir=args.data_dir,
            labels=args.labels.split(",") if args.labels is not None else labels,
            classifier=args.classifier,
            summarizer=args.summarizer,
            max_tokens=args.max_tokens,
            overlap_tokens=args.overlap_tokens,
            max_new_tokens=args.max_new_tokens,
            max_document_mb=args.max_document_mb,
            max_pages=args.max_pages,
            device=args.device,
            classify=not args.no_classify,
            summarize=not args.no_summarize,
            task_runner=args.task_runner,
            workers=args.workers,
            shard_documents=args.shard_documents,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")  # a message of ours says it all
        return _fail(message if message.startswith("--") or not where else f"{where}: {message}")
    params.make_plan()  # a model or budget problem is one line here, before Prefect starts
    from storage.datasets import Store

    Store(params.data_dir).check_writable()  # so is a read-only, full or unreachable data directory
    configure_prefect()
    return params


def configure_prefect() -> None:
    """Defaults for Prefect in this process, set before it starts; a variable already set wins."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without PREFECT_API_URL, Prefect starts a temporary server; on a busy 2-core machine it
    # needs longer than its default 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # That server records task runs one event per database transaction by default; in batches
    # it spent a third less CPU beside the flow (BENCHMARKS.md). It writes what it holds when
    # it stops, and nobody watches a temporary server, so the few seconds' delay costs nothing.
    # A server of your own (PREFECT_API_URL) keeps its own settings.
    for setting in ("BATCH_SIZE", "READ_BATCH_SIZE"):
        os.environ.setdefault(f"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_{setting}", "100")


def print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    from storage.datasets import Store
    from storage.warehouse import warehouse_path

    counts, seconds = report["counts"], report["stage_seconds"]
    table = Table(title=f"longdoc run {report['run_id']} ({report['status']})")
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
        "classify": ("segments_classified", "classify_tokens", "classify_truncated_tokens"),
        "summarize": (
            "segments_summarized",
            "summarize_output_tokens",
            "summarize_truncated_tokens",
            "segment_summaries_unclean",
        ),
        "aggregate": ("document_results_new", "summaries_merged", "document_summaries_unclean"),
    }
    for stage, secs in seconds.items():
        detail = ", ".join(f"{k.replace('_', ' ')} {counts[k]}" for k in keys.get(stage, ()) if k in counts)
        table.add_row(stage, f"{secs:.1f}", detail)
    out = console()
    out.print(table)
    inferred = counts.get("segments_classified", 0) + counts.get("segments_summarized", 0)
    if counts.get("documents", 0) == 0:
        out.print("No documents found in the inputs.")
    elif inferred == 0 and counts.get("document_results_new", 0) == 0:
        out.print("Nothing new: every document already has results for this configuration; no inference ran.")
    tps = report.get("tokens_per_s")
    out.print(
        f"config {report['config_id']} · {report['seconds']:.1f} s"
        + (f" · {tps:,.0f} model tokens/s" if tps else "")
        + f" · warehouse {warehouse_path(Store(report['data_dir']))}"
        + (f' · {counts["rejects"]} rejected: longdoc query "select * from rejects"' if counts.get("rejects") else "")
    )
    if "files" in counts:
        out.print(f"inputs: {counts['files']} files, {counts.get('files_unchanged', 0)} unchanged since last seen")
    if counts.get("rejects_by_reason"):
        out.print("rejected: " + ", ".join(f"{r} {n}" for r, n in counts["rejects_by_reason"].items()))


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


def _query(data_dir: str, sql: str, fmt: str, limits: QueryLimits) -> int:
    from storage.datasets import Store
    from storage.warehouse import query

    columns, rows = query(Store(data_dir), sql, limits)
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
