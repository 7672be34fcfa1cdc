"""Ingest: read sources into `documents`, one row per distinct text; unreadable input to `rejects`.

No single input stops a run: whatever one file raises (a reader's bug, a MemoryError, a name
that is not UTF-8) becomes a reject with a reason, and every string stored is valid UTF-8.

The inbox is read incrementally: `inbox_files` remembers each file's size, mtime, content hash
and documents, so an unchanged file is skipped without being read (a touched one is hashed,
not parsed). A run writes documents, then rejects, then `inbox_files` last: a run killed
before that last write is simply done again by the next one, which stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from storage.datasets import StorageError, Store
from storage.inputs import InputFile, escape_text, expand_inputs, read_input, valid_utf8
from tasks.formats.limits import Limits, RejectedInput
from tasks.formats.readers import FORMATS, Document, doc_id_for, read_documents
from tasks.redact import Placeholders, RedactSettings, redact_document, redaction_rows, scrub, scrub_uri

__all__ = ["IngestResult", "Limits", "RejectedInput", "doc_id_for", "ingest"]


@dataclass
class IngestResult:
    doc_ids: list[str]
    new_documents: int
    known_documents: int
    rejects: int
    files: int = 0
    files_unchanged: int = 0
    rejects_new: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class _Run:
    """What one ingest run collects before it writes anything."""

    run_id: str
    limits: Limits
    now: datetime
    known_docs: set[str]
    known_rejects: set[tuple[str, str, str]]
    redaction: RedactSettings | None = None
    doc_ids: list[str] = field(default_factory=list)
    new_docs: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    redactions: list[dict[str, Any]] = field(default_factory=list)
    uri_names: dict[str, Placeholders] = field(default_factory=dict)  # per input file, with --redact
    reasons: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0

    def record_rejects(self, uri: str, sha256: str) -> Counter[str]:
        """The stored rejects of the records of one version of a record file."""
        return Counter(r for u, r, f in self.known_rejects if f == sha256 and u.startswith(f"{uri}#"))

    def add_doc_id(self, doc_id: str) -> None:
        if doc_id not in self.doc_ids:
            self.doc_ids.append(doc_id)

    def stored_uri(self, uri: str) -> str:
        """A URI as stored: redacted like the documents (a file name can hold an address)."""
        return scrub_uri(uri, self.redaction, self.uri_placeholders(uri)) if self.redaction else uri

    def uri_placeholders(self, uri: str) -> Placeholders:
        """One numbering for the URIs of one file and its records (`file#id`)."""
        return self.uri_names.setdefault(uri.split("#", 1)[0], Placeholders())

    @property
    def settings(self) -> str:
        """What a file was read under: a file read without redaction is read again with it."""
        return self.limits.key + (f";{self.redaction.key}" if self.redaction else "")

    def add_document(self, doc: Document) -> str:
        redaction = None
        if self.redaction:  # the text is final here: redacted before its doc_id is computed
            doc, redaction = redact_document(doc, self.redaction, self.uri_placeholders(doc.source_uri))
        if doc.doc_id not in self.known_docs:
            self.known_docs.add(doc.doc_id)
            self.new_docs.append(_document_row(doc, self.now))
            if redaction:
                self.redactions += redaction_rows(doc.doc_id, redaction, self.run_id, self.now)
        self.add_doc_id(doc.doc_id)
        return doc.doc_id

    def reject(self, uri: str, reason: str, error: str, fingerprint: str) -> None:
        """Count a reject; store it unless this very input was rejected so before (a run that
        was killed, or an input named twice)."""
        uri, error = escape_text(uri), escape_text(error)  # e.g. a missing input named in Latin-1
        if self.redaction:  # a record's id, a reader's message quoting the text
            uri, error = self.stored_uri(uri), scrub(error, self.redaction, self.uri_placeholders(uri))
        self.reasons[reason] += 1
        if (uri, reason, fingerprint) in self.known_rejects:
            return
        self.known_rejects.add((uri, reason, fingerprint))
        self.rejects.append(
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
        self.states.append(
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


def ingest(
    store: Store,
    inputs: list[str],
    run_id: str,
    limits: Limits | None = None,
    redaction: RedactSettings | None = None,
) -> IngestResult:
    """Read every new or changed input; store documents not seen before; record every reject.
    With `redaction`, nothing stored holds a value it finds (documents, rejects, inbox_files)."""
    limits = limits or Limits()
    stored_rejects = store.read("rejects", columns=["source_uri", "reason", "fingerprint"]).to_pylist()
    run = _Run(
        run_id,
        limits,
        datetime.now(UTC),
        set(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist()),
        {(r["source_uri"], r["reason"], r["fingerprint"] or "") for r in stored_rejects},
        redaction,
    )
    previous = _latest_states(store)
    found = expand_inputs(inputs, exclude=store.root)
    for pattern in found.missing:
        run.reject(pattern, "missing-input", "no file matches this input", "")
    for bad in found.bad:
        run.reject(bad.uri, bad.reason, bad.error, "")
    stored = Counter(run.stored_uri(item.uri) for item in found.files)
    for item in found.files:  # two files whose names redact alike: neither is taken for the other
        key = run.stored_uri(item.uri)
        _ingest_file(run, item, previous.get(key) if stored[key] == 1 else None)
    new_docs = len(run.new_docs)
    store.write_part("documents", run.new_docs, f"{run_id}-ingest")
    store.write_part("redactions", run.redactions, f"{run_id}-ingest")
    store.write_part("rejects", run.rejects, f"{run_id}-ingest")
    store.write_part("inbox_files", run.states, f"{run_id}-ingest")  # last: it commits the run's reading
    return IngestResult(
        run.doc_ids,
        new_docs,
        len(run.doc_ids) - new_docs,
        sum(run.reasons.values()),
        len(found.files),
        run.unchanged,
        len(run.rejects),
        dict(sorted(run.reasons.items())),
    )


def _latest_states(store: Store) -> dict[str, dict[str, Any]]:
    """The last thing ingest saw of each file."""
    rows = store.read("inbox_files").sort_by([("seen_at", "ascending")]).to_pylist()
    return {row["source_uri"]: row for row in rows}


def _ingest_file(run: _Run, item: InputFile, prior: dict[str, Any] | None) -> None:
    """One file to documents or rejects. An unexpected error is a `reader-error` reject that the
    next run tries again (it may be a bug fixed since, or memory that was short)."""
    try:
        _read_file(run, item, prior)
    except Exception as exc:  # any type: one input must not stop the run
        reason = "reader-error"
        run.reject(item.uri, reason, f"{type(exc).__name__}: {_first_line(exc)}", _stat_print(item))
        run.remember(item, "", [], reason)


def _read_file(run: _Run, item: InputFile, prior: dict[str, Any] | None) -> None:
    same_settings = prior is not None and prior["settings"] == run.settings and prior["reason"] != "reader-error"
    if prior and same_settings and (prior["size"], prior["mtime_ns"]) == (item.size, item.mtime_ns):
        _reuse(run, prior)  # unchanged: not even read
        return
    suffix = PurePosixPath(item.path).suffix.lower()
    try:
        if suffix not in FORMATS:
            raise RejectedInput("unsupported-format", f"no reader for '{suffix or 'no extension'}'")
        data = _read(item, run.limits.file_limit(suffix))
    except RejectedInput as exc:
        run.reject(item.uri, exc.reason, str(exc), _stat_print(item))
        run.remember(item, "", [], exc.reason)
        return
    sha256 = hashlib.sha256(data).hexdigest()
    if prior and same_settings and prior["content_sha256"] == sha256:
        _reuse(run, prior)  # touched, not changed: remember the new mtime, parse nothing
        run.remember(item, sha256, json.loads(prior["doc_ids"]), prior["reason"])
        return
    doc_ids, reason = _parse(run, item, suffix, data, sha256)
    run.remember(item, sha256, doc_ids, reason)


def _stat_print(item: InputFile) -> str:
    return f"size={item.size};mtime_ns={item.mtime_ns}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "(no message)"


def _read(item: InputFile, limit: int) -> bytes:
    try:
        return read_input(item, limit)
    except StorageError as exc:
        raise RejectedInput("too-large", str(exc)) from exc
    except OSError as exc:
        raise RejectedInput("unreadable", _first_line(exc) if str(exc).strip() else type(exc).__name__) from exc


def _reuse(run: _Run, prior: dict[str, Any]) -> None:
    run.unchanged += 1
    for doc_id in json.loads(prior["doc_ids"]):
        run.add_doc_id(doc_id)
    if prior["reason"]:
        run.reasons[prior["reason"]] += 1
    elif prior["content_sha256"]:
        run.reasons.update(run.record_rejects(prior["source_uri"], prior["content_sha256"]))


def _parse(run: _Run, item: InputFile, suffix: str, data: bytes, sha256: str) -> tuple[list[str], str | None]:
    """The documents of one file's bytes; its own reject reason, if the whole file is refused."""
    stem = PurePosixPath(item.path).stem
    doc_ids: list[str] = []
    try:
        for doc in read_documents(item.uri, suffix, stem, data, run.limits):
            if doc.reject is not None:
                run.reject(doc.source_uri, doc.reject.reason, str(doc.reject), sha256)
            elif not doc.text.strip():
                run.reject(doc.source_uri, "empty", "no text", sha256)
            elif not valid_utf8(doc.text):  # e.g. a JSON "\ud800" escape or a PDF's broken font map
                run.reject(doc.source_uri, "undecodable", "the text holds lone surrogates (not Unicode)", sha256)
            else:
                doc_ids.append(run.add_document(doc))
    except RejectedInput as exc:
        run.reject(item.uri, exc.reason, str(exc), sha256)
        return doc_ids, exc.reason
    except RecursionError:  # a parser defeated by nesting depth
        run.reject(item.uri, "corrupt", "nested too deeply to parse", sha256)
        return doc_ids, "corrupt"
    if not doc_ids and suffix not in (".jsonl", ".ndjson", ".parquet"):
        return doc_ids, "empty"
    return doc_ids, None


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
