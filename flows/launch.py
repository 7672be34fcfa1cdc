"""Starting a flow run from the command line: the parameters from the options, Prefect's settings.

`longdoc run` (flows/cli.py) and `longdoc evaluate` (flows/evaluate.py) both start flows this way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from flows.params import ProcessParams


def fail(message: str) -> int:
    """A user error as one line, and the exit code argparse gives one."""
    print(f"longdoc: error: {message}", file=sys.stderr)
    return 2


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
        return fail(message if message.startswith("--") or not where else f"{where}: {message}")
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
