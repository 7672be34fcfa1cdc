"""One whole run (begin, ingest, the shard pipeline of tasks/run/pipeline.py, the run record)
as the flow runs it but without Prefect, in a process of its own, so tests can kill it with SIGKILL.

    python -m tests.stage_runner serve

reads one request per line on stdin, `DATA_DIR INBOX CLASSIFIER SUMMARIZER LOG_FILE`, forks a
process that does that run (its output to LOG_FILE) and answers `pid N`, then `exit CODE` when
it ends (-9 when killed). Forking from one warmed-up server spares every run the ~5 s of
importing torch and transformers; each run is still a real process of its own.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import UTC, datetime

from flows.params import ProcessParams
from storage.datasets import Store
from tasks.run import steps
from tasks.run.pipeline import add_up, run_shard
from tasks.run.results import RunReport


def run(data_dir: str, inbox: str, classifier: str, summarizer: str) -> RunReport:
    params = ProcessParams(
        inputs=[inbox],
        data_dir=data_dir,
        classifier=classifier,
        summarizer=summarizer,
        max_tokens=None,  # each model's own budget: the summarizer's prompt takes ~300 of its 488
        overlap_tokens=16,
        max_new_tokens=4,
        device="cpu",
    )
    plan, store = params.make_plan(), Store(data_dir)
    run_id, started = steps.new_run_id(), datetime.now(UTC)
    steps.step_begin_run(store, run_id, None, started, params.model_dump())
    ingested = steps.step_ingest(store, params.inputs, run_id, params.limits())
    shards = steps.step_shard(store, ingested.doc_ids, params.shard_documents)
    per_shard = [run_shard(store, plan, shard, run_id, "cpu") for shard in shards]
    results = add_up(per_shard).replace(ingest=ingested)
    return steps.step_record_run(
        store, run_id, None, plan.config_id, started, params.model_dump(), results, "completed"
    )


def warm_up(classifier: str, summarizer: str) -> None:
    """Import what a run imports lazily, computing nothing (a forked child must not inherit
    live thread pools)."""
    import torch
    import transformers.models.bert.modeling_bert
    import transformers.models.llama.modeling_llama  # noqa: F401

    from tasks.inference import POLICY

    torch.set_num_threads(1)  # the same arithmetic in every run, so results compare exactly
    POLICY.cpu_threads = 1  # and kept so when the models load, whatever the machine's load
    ProcessParams(inputs=["."], classifier=classifier, summarizer=summarizer).make_plan()


def _child(data_dir: str, inbox: str, classifier: str, summarizer: str, log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 0
    try:
        report = run(data_dir, inbox, classifier, summarizer)
        print(f"completed {report.run_id}: {report.counts.get('documents')} documents")
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    warmed = False
    for line in sys.stdin:
        args = line.split()
        if not warmed:
            warm_up(args[2], args[3])
            warmed = True
        pid = os.fork()
        if pid == 0:
            _child(*args)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    serve()
