"""Starting a flow run from the command line: the parameters from the options, Prefect's settings.

`longdoc run` (flows/cli.py) and `longdoc evaluate` (flows/evaluate.py) both start flows this way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from flows.params import ProcessParams

if TYPE_CHECKING:
    from tasks.run.plan import Plan


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


# Not options: the inputs are positional (INPUT..., or evaluate's DATA); the model cache is a
# deployment's setting, never one of `run`'s.
NOT_OPTIONS = ("inputs", "cache_dir")


def option_fields() -> list[str]:
    """The parameters `run` and `evaluate` take as options, in the model's order."""
    return [name for name in ProcessParams.model_fields if name not in NOT_OPTIONS]


def add_option(parser: argparse.ArgumentParser, name: str) -> None:
    """One parameter as an option: `--kebab-case`, its type, default and description from the
    model; a Literal gives the choices, a list is comma-separated, a bool that is on by default
    is turned off by `--no-name`."""
    field = ProcessParams.model_fields[name]
    default = field.get_default(call_default_factory=True)
    flag = "--" + name.replace("_", "-")
    help_text = _help(field.description or "", default)
    if field.annotation is bool:
        flag = flag if not default else "--no-" + flag.removeprefix("--")
        parser.add_argument(flag, dest=name, action="store_false" if default else "store_true", help=help_text)
        return
    kind = _without_none(field.annotation)
    if get_origin(kind) is Literal:
        parser.add_argument(flag, dest=name, choices=get_args(kind), default=default, help=help_text)
    elif get_origin(kind) is list:
        parser.add_argument(flag, dest=name, type=_comma_list, default=default, help=help_text)
    else:
        parser.add_argument(flag, dest=name, type=kind, default=default, help=help_text)


def _help(description: str, default: Any) -> str:
    """The description, with the default when there is one (None: the description says)."""
    if default is None:
        return description.replace("%", "%%")
    shown = repr(default) if isinstance(default, str) else default
    if isinstance(default, bool):
        shown = "yes" if default else "no"
    return f"{description.removesuffix('.')} (default: {shown})".replace("%", "%%")


def _without_none(annotation: Any) -> Any:
    """`int | None` -> `int`: an optional parameter is an option with no default."""
    if isinstance(annotation, UnionType):
        return next(t for t in get_args(annotation) if t is not type(None))
    return annotation


def _comma_list(text: str) -> list[str]:
    return text.split(",")  # the model strips the labels and says when none is left


def add_process_options(parser: argparse.ArgumentParser) -> None:
    """Every option of `run` (and `evaluate`), one per parameter."""
    for name in option_fields():
        add_option(parser, name)


def make_params(
    args: argparse.Namespace, inputs: list[str], labels: list[str] | None = None
) -> tuple[ProcessParams, Plan] | int:
    """The flow's parameters from `run`'s options and their plan, resolved once and checked before
    Prefect starts (an exit code when they are wrong: a model or budget problem is one line
    here); the flow takes the plan as it is. `labels` stand in when `--labels` is not given."""
    from pydantic import ValidationError

    values = {name: getattr(args, name) for name in option_fields()}
    if values["labels"] is None:
        values["labels"] = labels
    try:
        params = ProcessParams(inputs=inputs, **values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")  # a message of ours says it all
        return fail(message if message.startswith("--") or not where else f"{where}: {message}")
    plan = params.make_plan()  # a model or budget problem is one line here, before Prefect starts
    from storage.datasets import Store

    Store(params.data_dir, params.catalog).check_writable()  # so is a read-only, full or unreachable data directory
    configure_prefect()
    return params, plan


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
