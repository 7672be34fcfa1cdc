"""Every storage access of ingest, and nothing else: the seam a storage engine re-implements.

Ingest asks the store only about the candidates at hand (the doc_ids of one batch, the URIs of
the files one shard reads), never for whole tables; it writes only through `commit_batch`.
Implemented on the lake (storage/lakeio.py): keyed reads (`where={"doc_id": [...]}`, a URI
prefix for the records of one file) and one lake transaction per batch.

What `commit_batch` guarantees:
- the documents, their `redactions` rows (with `--redact`), the rejects and the `inbox_files`
  rows of one call are committed in one transaction: a file's inbox row is ingest's promise
  that the file's documents and rejects are stored, and it is never visible without them (a
  crash before the commit leaves a file that the next run reads again, and `known_doc_ids` /
  `known_rejects` keep that from storing anything twice);
- a document whose doc_id is already stored stays one row with that key: two ingest shards
  running at once may both find a text new and commit it (doc_id derives from the text, so the
  rows are equal but for `source_uri` / `ingested_at`). The lake's commit inserts only the keys
  absent at commit time, under its claim row (two commits at once conflict; the second retries
  and sees the first's rows). The `redactions` rows (key doc_id, type) of a document are stored
  with it or not at all (`follows`), so the rows kept are those of the document row kept (two
  records of one text may differ in what was redacted outside the text: `values`, `elsewhere`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from storage.datasets import Store
from storage.lakeio import Prefix, Where

# The most keys one lookup names; a longer list is asked in pieces.
LOOKUP_KEYS = 10_000


def known_doc_ids(store: Store, doc_ids: Collection[str]) -> set[str]:
    """Those of `doc_ids` already stored in `documents`."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(doc_ids))):
        table = store.read("documents", columns=["doc_id"], where={"doc_id": chunk})
        found.update(table.column("doc_id").to_pylist())
    return found


def latest_states(store: Store, uris: Collection[str]) -> dict[str, dict[str, Any]]:
    """The last `inbox_files` row (by `seen_at`) of each of these files that has one."""
    latest: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(uris))):
        rows = store.read("inbox_files", where={"source_uri": chunk}).sort_by([("seen_at", "ascending")])
        latest.update((row["source_uri"], row) for row in rows.to_pylist())
    return latest


def known_rejects(store: Store, uris: Collection[str]) -> set[tuple[str, str, str]]:
    """(source_uri, reason, fingerprint) of the stored rejects of these inputs."""
    found: set[tuple[str, str, str]] = set()
    for chunk in _chunks(sorted(set(uris))):
        table = store.read("rejects", columns=["source_uri", "reason", "fingerprint"], where={"source_uri": chunk})
        found.update((r["source_uri"], r["reason"], r["fingerprint"] or "") for r in table.to_pylist())
    return found


def record_rejects(store: Store, file_uri: str, sha256: str) -> Counter[str]:
    """The reasons of the stored rejects of the records of one version (content hash) of a
    record file: the rejects whose fingerprint is that hash and whose URI is `<file_uri>#...`."""
    where: Where = {"fingerprint": sha256, "source_uri": Prefix(f"{file_uri}#")}
    table = store.read("rejects", columns=["reason"], where=where)
    return Counter(table.column("reason").to_pylist())


def commit_batch(
    store: Store,
    documents: list[dict[str, Any]],
    redactions: list[dict[str, Any]],
    rejects: list[dict[str, Any]],
    inbox_rows: list[dict[str, Any]],
    name: str,
    *,
    run_id: str,
) -> dict[str, int]:
    """Store one batch in one transaction (rows as storage/schema.py's DOCUMENTS, REDACTIONS,
    REJECTS and INBOX_FILES); returns the rows added per table (fewer than passed where another
    writer stored a key first). `redactions` is empty without `--redact`; with it, it holds the
    rows of exactly the documents of this call (never a value, only counts and placeholder
    spans). `name` names the batch (`<run_id>-ingest-<shard>-<n>`); the lake's snapshot is
    named after `run_id`. The caller passes only documents and rejects that `known_doc_ids` /
    `known_rejects` did not find; see the module's docstring for what holds when it races."""
    rows = {"documents": documents, "redactions": redactions, "rejects": rejects, "inbox_files": inbox_rows}
    return store.commit(
        {table: data for table, data in rows.items() if data},
        run_id,
        event="write",
        follows={"redactions": "documents"},
        batch=name,
    )


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + LOOKUP_KEYS] for i in range(0, len(keys), LOOKUP_KEYS)] if keys else []
