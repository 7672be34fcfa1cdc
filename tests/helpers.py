"""Helpers several test modules share: sample documents, servers on loopback, damaged parts."""

from __future__ import annotations

import socket
import subprocess
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
