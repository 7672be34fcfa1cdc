"""Every storage access of ingest, and nothing else: the seam a storage engine re-implements.

Ingest asks the store only about the candidates at hand (the doc_ids of one batch, the URIs of
the files one shard reads), never for whole tables; it writes only through `commit_batch`.
Implemented here on the Parquet part files of `storage.datasets.Store` (a pyarrow dataset read
with an `is_in` filter, pushed down to the parts; one part file per table per batch).

What `commit_batch` must guarantee, whatever implements it:
- the documents and their `redactions` rows (with `--redact`) are stored before (or
  atomically with) the rejects and the `inbox_files` rows of the same call: a file's inbox row
  is ingest's promise that the file's documents and rejects are stored, so it must never become
  visible before them (a crash in between leaves a file that the next run reads again, and
  `known_doc_ids` / `known_rejects` keep that from storing anything twice);
- a document whose doc_id is already stored stays one row with that key: two ingest shards
  running at once may both find a text new and commit it (doc_id derives from the text, so the
  rows are equal but for `source_uri` / `ingested_at`). Parquet parts may hold both; the
  warehouse keeps one per key. A lake must do the same at commit (insert only doc_ids absent
  at commit time, or merge on doc_id), retrying a commit that conflicts. The same holds for the
  `redactions` rows (key doc_id, type) of such a document: inserted with it, or not at all, so
  the rows kept are those of the document row kept (two records of one text may differ in
  what was redacted outside the text: `values`, `elsewhere`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

import pyarrow.compute as pc

from storage.datasets import Store, is_in

# The most keys one lookup names; a longer list is asked in pieces.
LOOKUP_KEYS = 10_000


def known_doc_ids(store: Store, doc_ids: Collection[str]) -> set[str]:
    """Those of `doc_ids` already stored in `documents`."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(doc_ids))):
        table = store.read("documents", columns=["doc_id"], where=is_in("doc_id", chunk))
        found.update(table.column("doc_id").to_pylist())
    return found


def latest_states(store: Store, uris: Collection[str]) -> dict[str, dict[str, Any]]:
    """The last `inbox_files` row (by `seen_at`) of each of these files that has one."""
    latest: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(uris))):
        rows = store.read("inbox_files", where=is_in("source_uri", chunk)).sort_by([("seen_at", "ascending")])
        latest.update((row["source_uri"], row) for row in rows.to_pylist())
    return latest


def known_rejects(store: Store, uris: Collection[str]) -> set[tuple[str, str, str]]:
    """(source_uri, reason, fingerprint) of the stored rejects of these inputs."""
    found: set[tuple[str, str, str]] = set()
    for chunk in _chunks(sorted(set(uris))):
        table = store.read("rejects", columns=["source_uri", "reason", "fingerprint"], where=is_in("source_uri", chunk))
        found.update((r["source_uri"], r["reason"], r["fingerprint"] or "") for r in table.to_pylist())
    return found


def record_rejects(store: Store, file_uri: str, sha256: str) -> Counter[str]:
    """The reasons of the stored rejects of the records of one version (content hash) of a
    record file: the rejects whose fingerprint is that hash and whose URI is `<file_uri>#...`."""
    table = store.read("rejects", columns=["source_uri", "reason"], where=pc.field("fingerprint") == sha256)
    prefix = f"{file_uri}#"
    return Counter(r["reason"] for r in table.to_pylist() if r["source_uri"].startswith(prefix))


def commit_batch(
    store: Store,
    documents: list[dict[str, Any]],
    redactions: list[dict[str, Any]],
    rejects: list[dict[str, Any]],
    inbox_rows: list[dict[str, Any]],
    name: str,
) -> None:
    """Store one batch: documents and their redactions, then rejects, then inbox rows (rows as
    storage/schema.py's DOCUMENTS, REDACTIONS, REJECTS and INBOX_FILES). `redactions` is empty
    without `--redact`; with it, it holds the rows of exactly the documents of this call (never a
    value, only counts and placeholder spans). `name` is unique to this commit (a part's file
    name). The caller passes only documents and rejects that `known_doc_ids` / `known_rejects`
    did not find; see the module's docstring for what must hold when it races another writer."""
    store.write_part("documents", documents, name)
    store.write_part("redactions", redactions, name)
    store.write_part("rejects", rejects, name)
    store.write_part("inbox_files", inbox_rows, name)  # last: it commits the files' reading


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + LOOKUP_KEYS] for i in range(0, len(keys), LOOKUP_KEYS)] if keys else []
