"""What users do with Prefect: a real server, the process pool, the deployments of
deployments/prefect.yaml, a worker, `prefect deployment run ... --watch`; and the flow on a Dask
cluster of two worker processes, whose tables must equal the thread runner's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import DOCS, prefect_api, prefect_server, sql, stop

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "documents": "doc_id, title, text",
    "segments": "segment_id, doc_id, seq, char_start, char_end, n_tokens, overlap_tokens",
    "segment_labels": "segment_id, model, label, round(score, 4) AS score",
    "segment_summaries": "segment_id, model, summary",
    "document_results": "doc_id, config_id, label, round(label_score, 4) AS score, summary, n_segments",
}


def api(env: dict[str, str], path: str, body: dict | None = None) -> dict:
    return prefect_api(env, path, body)


def prefect(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on a free loopback port, with a fresh PREFECT_HOME."""
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as env:
        yield env


def write_inbox(inbox: Path) -> None:
    inbox.mkdir()
    for name, text in DOCS.items():
        (inbox / name).write_text(text, encoding="utf-8")


def test_adhoc_deployment_runs_on_a_worker(
    server: dict[str, str], tmp_path: Path, tiny_bert_classifier: str, tiny_llama: str
) -> None:
    started = time.monotonic()
    env = server
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    write_inbox(inbox)
    created = prefect("work-pool", "create", "longdoc", "--type", "process", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect("deploy", "--all", "--prefect-file", "deployments/prefect.yaml", env=env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    nightly = api(env, "/deployments/name/process-documents/nightly")
    schedule = nightly["schedules"][0]["schedule"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "UTC")
    assert nightly["parameters"]["params"]["inputs"] == ["./inbox"]
    assert api(env, "/deployments/name/process-documents/adhoc")["schedules"] == []

    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "longdoc"],
        env=env,
        cwd=tmp_path,  # the deployment's pull step, not the worker's directory, must find the code
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        params = {
            "inputs": [str(inbox)],
            "data_dir": str(data),
            "classifier": tiny_bert_classifier,
            "summarizer": tiny_llama,
            "overlap_tokens": 12,
            "max_new_tokens": 8,
            "shard_documents": 2,
        }
        run = prefect(
            "deployment",
            "run",
            "process-documents/adhoc",
            "--param",
            f"params={json.dumps(params)}",
            "--watch",
            env=env,
            timeout=400,
        )
    finally:
        stop(worker)
        worker_log.close()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:] + (tmp_path / "worker.log").read_text()[-3000:]
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert flow_run_id, output[-2000:]
    flow_run = api(env, f"/flow_runs/{flow_run_id.group(1)}")
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]

    # One task per stage per shard: 3 documents in shards of 2 make 2 shards; bookkeeping
    # (plan, shards, artifacts) runs in the flow itself, not as task runs.
    # Task runs reach the server as events, which its recorder stores a moment later than the
    # flow run's own state: wait (bounded) until the last ones are in.
    stages = ("segment", "classify", "summarize", "aggregate")
    ingest = ["plan-ingest", "ingest-shard-0", "finish-ingest"]  # 3 small files: one ingest shard
    expected = sorted([*ingest, "record-run", *(f"{stage}-shard-{n}" for stage in stages for n in (0, 1))])
    deadline = time.monotonic() + 30
    while True:
        task_runs = api(env, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id.group(1)]}}})
        names = sorted(r["name"] if "-shard-" in r["name"] else r["name"].rsplit("-", 1)[0] for r in task_runs)
        if len(names) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert names == expected
    keys = ["longdoc-run-summary", "longdoc-document-results", "longdoc-progress"]
    artifacts = {a["key"]: a for a in api(env, "/artifacts/filter", {"artifacts": {"key": {"any_": keys}}})}
    assert "documents: 3 (3 new)" in artifacts["longdoc-run-summary"]["data"]
    table = artifacts["longdoc-document-results"]["data"]
    assert len(json.loads(table) if isinstance(table, str) else table) == 3
    assert artifacts["longdoc-progress"]["data"] == 100.0  # moved to the end during inference

    assert sql("SELECT count(*) AS n FROM documents", data, env)[0]["n"] == 3
    assert sql("SELECT count(*) AS n FROM document_results", data, env)[0]["n"] == 3
    runs = sql("SELECT status, flow_run_id FROM runs", data, env)
    assert runs == [{"status": "completed", "flow_run_id": flow_run_id.group(1)}]
    print(f"deployment test: {time.monotonic() - started:.1f} s")


def run_cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_dask_cluster_gives_the_thread_runners_tables(
    server: dict[str, str], tmp_path: Path, tiny_bert_classifier: str, tiny_llama: str
) -> None:
    inbox = tmp_path / "inbox"
    write_inbox(inbox)
    common = ["--classifier", tiny_bert_classifier, "--summarizer", tiny_llama]
    common += ["--overlap-tokens", "12", "--max-new-tokens", "8", "--shard-documents", "1"]
    run_cli(server, str(inbox), "--data-dir", str(tmp_path / "threads"), *common)
    output = run_cli(
        server, str(inbox), "--data-dir", str(tmp_path / "dask"), "--task-runner", "dask", "--workers", "2", *common
    )
    assert "Creating a new Dask cluster" in output  # the shards really went to Dask
    for table, columns in TABLES.items():
        query = f"SELECT {columns} FROM {table} ORDER BY ALL"
        threads, dask = sql(query, tmp_path / "threads", server), sql(query, tmp_path / "dask", server)
        assert threads and threads == dask, table
