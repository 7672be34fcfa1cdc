"""The lake's pieces that ingest's catalog (tasks/ingest/catalog.py) stands on: a prefix read
whose text is a parameter, and rows that follow their owner's (a document's `redactions` are
stored with it or not at all), also when two processes commit the same document at once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from storage.datasets import Store
from storage.lakeio import Prefix
from tests.conftest import document_row

ROOT = Path(__file__).resolve().parents[2]


def reject(uri: str, fingerprint: str, reason: str = "bad-record") -> dict:
    return {
        "source_uri": uri,
        "run_id": "r1",
        "reason": reason,
        "error": "x",
        "rejected_at": datetime.now(UTC),
        "fingerprint": fingerprint,
    }


def redaction(doc_id: str, kind: str, values: int) -> dict:
    spans = "[[0, 9]]"
    return {"doc_id": doc_id, "type": kind, "count": 1, "values": values, "elsewhere": 0, "spans": spans}


def test_a_prefix_read_takes_its_text_as_a_value_never_as_sql(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    uris = ["file:///a.jsonl#1", "file:///a.jsonl#2", "file:///a.jsonlx#1", "file:///b.jsonl#1", "file:///a%'.jsonl#1"]
    store.add("rejects", [reject(u, "h1") for u in uris] + [reject("file:///a.jsonl#3", "h2")], "r1")
    got = store.read("rejects", ["source_uri"], where={"source_uri": Prefix("file:///a.jsonl#"), "fingerprint": "h1"})
    assert sorted(got.column("source_uri").to_pylist()) == ["file:///a.jsonl#1", "file:///a.jsonl#2"]
    for hostile in ("file:///a%.", "file:///a_jsonl#", "' OR 1=1 --"):  # LIKE wildcards and quotes are text
        assert store.read("rejects", where={"source_uri": Prefix(hostile)}).num_rows == 0
    assert store.read("rejects", where={"source_uri": Prefix("file:///a%'")}).num_rows == 1


def test_following_rows_are_stored_only_with_a_row_their_commit_adds(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    follows = {"redactions": "documents"}
    first = store.commit(
        {"documents": [document_row("d1", "[EMAIL_1]")], "redactions": [redaction("d1", "email", 1)]},
        "r1",
        follows=follows,
    )
    assert first == {"documents": 1, "redactions": 1}
    # The same document again (another shard, another record of the same text): its redaction
    # rows differ (a phone outside the text) and must not join the row stored first.
    again = store.commit(
        {
            "documents": [document_row("d1", "[EMAIL_1]"), document_row("d2", "[IP_1]")],
            "redactions": [redaction("d1", "email", 2), redaction("d1", "phone", 1), redaction("d2", "ip", 1)],
        },
        "r2",
        follows=follows,
    )
    assert again == {"documents": 1, "redactions": 1}
    rows = sorted((r["doc_id"], r["type"], r["values"]) for r in store.read("redactions").to_pylist())
    assert rows == [("d1", "email", 1), ("d2", "ip", 1)]


WRITER = """
import sys
from datetime import UTC, datetime
from storage.datasets import Store
from tests.conftest import document_row
root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(root)
for i in range(n):
    doc = f"doc{i:03d}"
    red = {"doc_id": doc, "type": "email", "count": 1, "values": 1, "elsewhere": 0, "spans": "[]",
           "run_id": tag, "redacted_at": datetime.now(UTC)}
    other = red | {"type": "phone" if tag == "b" else "ip"}
    store.commit({"documents": [document_row(doc, f"text {i}")], "redactions": [red, other]}, tag,
                 follows={"redactions": "documents"})
"""


def test_two_processes_committing_the_same_documents_keep_one_writers_redactions_each(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    Store(root).read("documents")  # the lake made before the race
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, root, tag, "12"], env=env, stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    store = Store(root)
    assert store.read("documents").num_rows == 12
    by_doc: dict[str, set[str]] = {}
    for row in store.read("redactions").to_pylist():
        by_doc.setdefault(row["doc_id"], set()).add(row["type"])
    # each document's rows come from one writer: email and ip (a), or email and phone (b)
    assert len(by_doc) == 12 and all(types in ({"email", "ip"}, {"email", "phone"}) for types in by_doc.values())
