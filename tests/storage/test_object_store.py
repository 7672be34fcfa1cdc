"""The flow with inputs and data directory in an S3 bucket, served by moto on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flows.test_deployment import free_port, stop
from tests.flows.test_flow_e2e import DOCS

pytestmark = pytest.mark.prefect


def bucket_fs(env: dict[str, str], create: bool = False) -> Any:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=env["AWS_ENDPOINT_URL"],
        allow_bucket_creation=create,
    )


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto) in its own process; the environment that reaches it."""
    port = free_port()
    log_dir = tmp_path_factory.mktemp("moto")
    log = (log_dir / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                bucket_fs(env, create=True).create_dir("longdoc-test")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((log_dir / "moto.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        for name, text in DOCS.items():
            with bucket_fs(env).open_output_stream(f"longdoc-test/inbox/{name}") as out:
                out.write(text.encode())
        yield env
    finally:
        stop(process)
        log.close()


def test_bucket_in_bucket_out(s3: dict[str, str], tmp_path: Path, tiny_bert_classifier: str) -> None:
    env = {
        **s3,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PREFECT_API_URL", None)
    data = "s3://longdoc-test/data"
    args = ["run", "s3://longdoc-test/inbox", "--data-dir", data, "--classifier", tiny_bert_classifier]
    args += ["--no-summarize", "--max-tokens", "64", "--shard-documents", "2"]

    def longdoc(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *argv], env=env, capture_output=True, text=True, timeout=600
        )

    first = longdoc(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    import pyarrow.fs as pafs

    listing = bucket_fs(s3).get_file_info(pafs.FileSelector("longdoc-test/data", recursive=True))
    stored = {info.path.split("/")[2] for info in listing}
    assert {"documents", "segments", "segment_labels", "document_results", "runs"} <= stored

    sql = "SELECT d.source_uri, r.label FROM document_results r JOIN documents d USING (doc_id) ORDER BY 1"
    out = longdoc("query", sql, "--data-dir", data, "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"s3://longdoc-test/inbox/{n}" for n in sorted(DOCS)]

    # The local catalogue of a bucket is a cache: another machine (here, a fresh cache) rebuilds it.
    env["LONGDOC_CACHE_DIR"] = str(tmp_path / "other-machine")
    again = longdoc("query", "SELECT count(*) FROM segment_labels", "--data-dir", data, "--format", "csv")
    assert again.returncode == 0, again.stderr
    assert int(again.stdout.splitlines()[1]) > len(DOCS)
