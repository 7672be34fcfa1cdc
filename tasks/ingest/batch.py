"""What one ingest shard holds between commits: at most one batch of new documents.

Documents (and, with `--redact`, their `redactions` rows), rejects and inbox rows are
collected and committed together every
`BatchSize.documents` documents or `BatchSize.text_bytes` bytes of text, and at the end of the
shard. A file's inbox row is collected after its last document, so it is committed with or after
them, never before. Whether a document or reject is new is asked of the store (catalog.py) for
the batch's own keys when it is committed.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.datasets import Store
from storage.inputs import InputFile, escape_text, valid_utf8
from tasks.formats.limits import MIB, Limits
from tasks.formats.readers import Document
from tasks.ingest import catalog
from tasks.ingest.units import inbox_settings
from tasks.redact import Placeholders, RedactSettings, redact_document, redaction_rows, scrub, scrub_uri


@dataclass(frozen=True)
class BatchSize:
    """When a shard commits: whichever comes first. The defaults, defined here only. Each
    commit is a data file of `documents` and a doc_id lookup that reads the column of every
    stored one (hashes: no file statistic prunes it), so fewer, larger batches keep a large
    lake's ingest from growing with it; the text bytes bound the memory."""

    documents: int = 5000
    text_bytes: int = 32 * MIB


@dataclass
class ShardRun:
    """One shard's reading: the run's doc_ids in order, the batch not yet committed, counts."""

    store: Store
    run_id: str
    limits: Limits
    now: datetime
    name: str  # commits are named `<name>-<n>`
    size: BatchSize = field(default_factory=BatchSize)
    redaction: RedactSettings | None = None
    doc_ids: dict[str, None] = field(default_factory=dict)  # ordered, and a set: linear
    pending_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_rejects: list[dict[str, Any]] = field(default_factory=list)
    pending_states: list[dict[str, Any]] = field(default_factory=list)
    pending_redactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by doc_id
    uri_names: dict[str, Placeholders] = field(default_factory=dict)  # per input file, with --redact
    uri_ends: dict[str, int] = field(default_factory=dict)  # cut file -> where its numbering stands
    stored_rejects: set[tuple[str, str, str]] = field(default_factory=set)  # by this shard
    reasons: Counter[str] = field(default_factory=Counter)
    new_documents: int = 0
    rejects_new: int = 0
    unchanged: int = 0
    commits: int = 0
    _pending_bytes: int = 0

    def add_doc_id(self, doc_id: str) -> None:
        self.doc_ids.setdefault(doc_id)

    @property
    def settings(self) -> str:
        """What a file is read under (`inbox_files.settings`)."""
        return inbox_settings(self.limits, self.redaction)

    def stored_uri(self, uri: str) -> str:
        """A URI as stored: redacted like the documents (a file name can hold an address)."""
        return scrub_uri(uri, self.redaction, self.uri_placeholders(uri)) if self.redaction else uri

    def uri_placeholders(self, uri: str) -> Placeholders:
        """One numbering for the URIs of one file and its records (`file#id`), in the order of
        the file's records (stage.py seeds it for a record range that does not start the file)."""
        return self.uri_names.setdefault(uri.split("#", 1)[0], Placeholders())

    def add_document(self, doc: Document) -> str:
        redaction = None
        if self.redaction:  # the text is final here: redacted before its doc_id is computed
            doc, redaction = redact_document(doc, self.redaction, self.uri_placeholders(doc.source_uri))
        if doc.doc_id not in self.doc_ids:
            self.pending_docs[doc.doc_id] = _document_row(doc, self.now)
            self._pending_bytes += len(doc.text)
            if redaction:
                self.pending_redactions[doc.doc_id] = redaction_rows(doc.doc_id, redaction, self.run_id, self.now)
        self.add_doc_id(doc.doc_id)
        if len(self.pending_docs) >= self.size.documents or self._pending_bytes >= self.size.text_bytes:
            self.flush()
        return doc.doc_id

    def reject(self, uri: str, reason: str, error: str, fingerprint: str) -> None:
        """Count a reject; it is stored unless this very input was rejected so before (a run
        that was killed, or an input named twice)."""
        uri, error = escape_text(uri), escape_text(error)  # e.g. a missing input named in Latin-1
        if self.redaction:  # a record's id, a reader's message quoting the text
            # The message is scrubbed with a copy of the file's numbering: a value it names that
            # the URIs do not gives out no number, so URI numbers follow the records' URIs only.
            error = scrub(error, self.redaction, copy.deepcopy(self.uri_placeholders(uri)))
            uri = self.stored_uri(uri)
        self.reasons[reason] += 1
        self.pending_rejects.append(
            {
                "source_uri": uri,
                "run_id": self.run_id,
                "reason": reason,
                "error": error,
                "rejected_at": self.now,
                "fingerprint": fingerprint,
            }
        )

    def remember(self, item: InputFile, sha256: str, doc_ids: list[str], reason: str | None) -> None:
        """The file's inbox row: after its documents, so committed with or after them."""
        self.pending_states.append(
            {
                "source_uri": self.stored_uri(item.uri),
                "run_id": self.run_id,
                "size": item.size,
                "mtime_ns": item.mtime_ns,
                "content_sha256": sha256,
                "settings": self.settings,
                "doc_ids": json.dumps(doc_ids),
                "reason": reason,
                "seen_at": self.now,
            }
        )
        if len(self.pending_states) >= self.size.documents:
            self.flush()

    def flush(self) -> None:
        """Commit what is pending: the documents (with their redactions) and rejects the store
        lacks, and the inbox rows."""
        if not (self.pending_docs or self.pending_rejects or self.pending_states):
            return
        known = catalog.known_doc_ids(self.store, self.pending_docs) if self.pending_docs else set()
        documents = [row for doc_id, row in self.pending_docs.items() if doc_id not in known]
        redactions = [row for doc_id, rows in self.pending_redactions.items() if doc_id not in known for row in rows]
        rejects = self._new_rejects()
        name = f"{self.name}-{self.commits:05d}"
        added = catalog.commit_batch(
            self.store, documents, redactions, rejects, self.pending_states, name, run_id=self.run_id
        )
        self.commits += 1
        self.new_documents += added.get("documents", 0)  # another shard may have stored one first
        self.rejects_new += added.get("rejects", 0)
        self.pending_docs, self.pending_rejects, self.pending_states = {}, [], []
        self.pending_redactions = {}
        self._pending_bytes = 0

    def _new_rejects(self) -> list[dict[str, Any]]:
        if not self.pending_rejects:
            return []
        known = catalog.known_rejects(self.store, {r["source_uri"] for r in self.pending_rejects})
        new = []
        for row in self.pending_rejects:
            key = (row["source_uri"], row["reason"], row["fingerprint"])
            if key not in known and key not in self.stored_rejects:
                self.stored_rejects.add(key)
                new.append(row)
        return new


def _document_row(doc: Document, now: datetime) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "source_uri": escape_text(doc.source_uri),
        "format": doc.format,
        "title": escape_text(doc.title),
        "text": doc.text,
        "n_chars": len(doc.text),
        "content_sha256": doc.content_sha256,
        "ingested_at": now,
        "metadata": _json_text(doc.metadata),
    }


def _json_text(value: Any) -> str:
    """JSON of `value`, non-ASCII kept; a lone surrogate (e.g. from a record's "\\udc00")
    written as its `\\u` escape, which is the same JSON value and valid UTF-8."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if valid_utf8(text) else json.dumps(value, default=str)
