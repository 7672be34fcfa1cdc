"""Where the shards' tasks run: threads in the flow's process, or Dask workers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from flows.params import ProcessParams
from tasks.errors import LongdocError


def task_runner(params: ProcessParams) -> Any:
    """The task runner the parameters name; Dask only when asked, so it stays optional."""
    if params.task_runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=params.workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise LongdocError("--task-runner dask needs prefect-dask: pip install 'longdoc[dask]'") from exc
    if params.task_runner != "dask":  # the address of a running scheduler
        return DaskTaskRunner(address=params.task_runner)
    cluster: dict[str, Any] = {"n_workers": params.workers, "threads_per_worker": 1, "processes": True}
    if _wants_gpu(params):
        cluster["resources"] = {"GPU": 1}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


def _wants_gpu(params: ProcessParams) -> bool:
    if params.device == "cpu":
        return False
    from tasks.inference.models import pick_device

    return pick_device(params.device).startswith("cuda")


def gpu_annotation(params: ProcessParams) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """On Dask with a GPU, inference tasks ask for the worker resource GPU=1, so a GPU runs one
    inference task at a time (workers of a cluster of your own need `--resources GPU=1`)."""
    if params.task_runner == "threads" or not _wants_gpu(params):
        return contextlib.nullcontext
    import dask

    return lambda: dask.annotate(resources={"GPU": 1})
