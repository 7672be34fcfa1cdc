"""Helpers several test modules share: sample documents, servers on loopback, damaged parts."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DOCS = {
    "meeting.txt": "\n".join(
        f"Speaker {i % 3}: We talked about the budget for item {i}. The chair asked for figures, and we agreed!"
        for i in range(60)
    ),
    "notes.md": "# Design notes\n\n"
    + "\n\n".join(
        f"Paragraph {i} explains the remote control: buttons, a battery, a case — café-grade “quality”."
        for i in range(40)
    ),
    "page.html": "<html><head><title>Report</title></head><body><nav>Menu</nav><main>"
    + "".join(f"<p>Visits rose again in month {i}; the library lent more books.</p>" for i in range(50))
    + "</main><footer>(c) City</footer></body></html>",
}


def sql(query: str, data: Path, env: dict[str, str]) -> list[dict]:
    """Rows as dicts, read the way `longdoc query` reads them (read-only)."""
    from storage.datasets import Store
    from storage.warehouse import query as run_query

    columns, rows = run_query(Store(str(data)), query)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL when a graceful shutdown takes too long (a busy worker may)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def bucket_fs(env: dict[str, str], create: bool = False) -> Any:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=env["AWS_ENDPOINT_URL"],
        allow_bucket_creation=create,
    )


def prefect_api(env: dict[str, str], path: str, body: dict | list | None = None, method: str | None = None) -> Any:
    """One call to the Prefect server's REST API that `env` names. A busy SQLite server answers
    503 when its database stays locked: retried a few times, as Prefect's own client does."""
    import json
    import time
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        env["PREFECT_API_URL"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method or ("POST" if body is not None else "GET"),
    )
    for attempt in range(6):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
            return json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 503) or attempt == 5:
                raise
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


@contextmanager
def prefect_server(home: Path, **settings: str) -> Iterator[dict[str, str]]:
    """A real Prefect server (every service: scheduler, triggers, actions...) on a free
    loopback port with a fresh PREFECT_HOME; yields the environment that reaches it. `settings`
    are more PREFECT_* variables for the server and its clients."""
    import os
    import sys
    import time

    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "LONGDOC_CACHE_DIR": str(home / "longdoc-cache"),
        "HF_HUB_OFFLINE": "1",
        **settings,
    }
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300  # ~12 s on an idle machine; minutes on a loaded one
        while True:
            try:
                prefect_api(env, "/health")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((home / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield env
    finally:
        stop(process)
        log.close()
