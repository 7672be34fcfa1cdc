"""Clean exits of `longdoc run` and `evaluate`: signals, and errors no retry can fix.

SIGTERM and SIGINT during a run: stop within seconds, record the run, leave nothing behind.

The flow runs in a worker thread while the main thread only waits, so a signal always reaches
a handler of ours (Prefect's own SIGTERM handler, installed when a flow runs in the main
thread, waits for every running task to finish). The handler requests the process's
cancellation (tasks/inference/engine.py): inference stops at its next decode step or batch, the failed
task is not retried, and the flow records the run as cancelled. If the flow has not ended
after a short grace (a model still loading, a stage that does not look), the process stops
Prefect's temporary server and exits anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tasks.errors import retry_cannot_help
from tasks.inference.engine import CANCELLATION

T = TypeVar("T")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_SECONDS = 3.0  # for the flow to record the run once inference has stopped


class Interrupted(Exception):
    """A run stopped by a signal; `finished` says whether the flow ended within the grace."""

    def __init__(self, signum: int, finished: bool) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.finished = finished

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 143 for SIGTERM, 130 for SIGINT


def run_interruptibly(work: Callable[[], T], grace_s: float = GRACE_SECONDS) -> T:
    """`work()` in a worker thread (with this thread's context: Prefect's settings live in
    context variables); Interrupted when SIGTERM or SIGINT arrives first."""
    received: list[int] = []
    outcome: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as exc:  # handed to the main thread below
            outcome["error"] = exc
        finally:
            done.set()

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        CANCELLATION.request(f"interrupted by {signal.Signals(signum).name}")

    previous = {signum: signal.signal(signum, on_signal) for signum in SIGNALS}
    try:
        threading.Thread(target=target, name="longdoc-flow", daemon=True).start()
        while not done.wait(0.1) and not received:
            pass
        if received:
            done.wait(grace_s)
            raise Interrupted(received[0], done.is_set())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def exit_interrupted(exc: Interrupted) -> int:
    """After the one line is printed: the exit code when the flow ended (Prefect's exit
    handlers stop its temporary server); otherwise stop that server here and leave at once,
    the flow's thread still running."""
    if exc.finished:
        return exc.exit_code
    stop_temporary_server()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exc.exit_code)


def stop_temporary_server() -> None:
    """Stop the server Prefect started for this process when PREFECT_API_URL is unset (one per
    process, Prefect's own `SubprocessASGIServer()`); a server of your own is left alone."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    SubprocessASGIServer().stop()


@contextlib.contextmanager
def known_errors_without_tracebacks() -> Iterator[None]:
    """Prefect logs a failed task or flow run with its traceback; for an error the CLI ends with
    one line (a user or environment error, no retry can fix) the log keeps its one line
    and drops the traceback. Unexpected errors keep theirs."""

    def one_line(record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and retry_cannot_help(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True

    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(one_line)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(one_line)
