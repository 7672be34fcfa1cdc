"""Ingest: read sources into `documents`, one row per distinct text; unreadable input to `rejects`."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import pyarrow.fs as pafs

from storage.datasets import StorageError, Store, expand_inputs, is_in, read_bytes, to_uri
from tasks.html_text import html_to_text

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
TEXT_FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md"}
HTML_FORMATS = {".html": "html", ".htm": "html", ".xhtml": "html"}
COMMON_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "cp1251", "shift_jis", "gb18030", "big5", "euc_kr", "cp1250")
RECORD_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class RejectedInput(Exception):
    """An input longdoc cannot turn into a document; `reason` is a short code."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason


@dataclass
class Document:
    source_uri: str
    format: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.text)


def doc_id_for(text: str) -> str:
    """A document's identity is its text: the same text ingested twice is one document."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass
class IngestResult:
    doc_ids: list[str]
    new_documents: int
    known_documents: int
    rejects: int
    documents_part: str | None = None


def decode(data: bytes) -> tuple[str, str]:
    """Bytes to text: UTF-8 (BOM dropped) when valid, else the best detected encoding."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.encoding is None:
        raise RejectedInput("undecodable", "no text encoding fits these bytes")
    # Short texts fit several code pages equally well: take the most widely used of those.
    tied = {m.encoding: m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    chosen = next((tied[e] for e in COMMON_ENCODINGS if e in tied), best)
    return str(chosen), chosen.encoding


def _title_from_markdown(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def read_file(fs: pafs.FileSystem, path: str, max_bytes: int) -> Iterator[Document]:
    """The documents in one file (one for a text file, one per record for jsonl/parquet)."""
    uri = to_uri(fs, path)
    suffix = PurePosixPath(path).suffix.lower()
    stem = PurePosixPath(path).stem
    if suffix not in TEXT_FORMATS | HTML_FORMATS | RECORD_FORMATS:
        raise RejectedInput("unsupported-format", f"no reader for '{suffix or 'no extension'}'")
    try:
        data = read_bytes(fs, path, max_bytes)
    except StorageError as exc:
        raise RejectedInput("too-large", str(exc)) from exc
    except OSError as exc:
        raise RejectedInput("unreadable", str(exc)) from exc
    if suffix == ".parquet":
        yield from _parquet_records(uri, data)
        return
    text, encoding = decode(data)
    meta: dict[str, Any] = {"bytes": len(data), "encoding": encoding}
    if suffix in RECORD_FORMATS:
        yield from _jsonl_records(uri, text)
    elif suffix in HTML_FORMATS:
        body, title = html_to_text(text)
        yield Document(uri, "html", title or stem, body, meta)
    else:
        fmt = TEXT_FORMATS[suffix]
        title = _title_from_markdown(text, stem) if fmt == "md" else stem
        yield Document(uri, fmt, title, text, meta)


def _record_document(uri: str, number: int, record: Any, fmt: str) -> Document:
    if not isinstance(record, dict):
        raise RejectedInput("bad-record", f"record {number} is not an object")
    text = record.get("text")
    if not isinstance(text, str):
        raise RejectedInput("bad-record", f"record {number} has no string 'text' field")
    rec_id = record.get("id", number)
    metadata = {k: v for k, v in record.items() if k != "text"}
    title = str(record.get("title") or rec_id)
    return Document(f"{uri}#{rec_id}", fmt, title, text, metadata)


def _jsonl_records(uri: str, text: str) -> Iterator[Document]:
    for number, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _BadRecord(f"{uri}#line-{number + 1}", "bad-record", f"invalid JSON: {exc}")
            continue
        try:
            yield _record_document(uri, number, record, "jsonl")
        except RejectedInput as exc:
            yield _BadRecord(f"{uri}#line-{number + 1}", exc.reason, str(exc))


def _parquet_records(uri: str, data: bytes) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:
        raise RejectedInput("unreadable", f"not a Parquet file: {exc}") from exc
    if "text" not in table.column_names:
        raise RejectedInput("bad-record", "Parquet file has no 'text' column")
    for number, record in enumerate(table.to_pylist()):
        try:
            yield _record_document(uri, number, record, "parquet")
        except RejectedInput as exc:
            yield _BadRecord(f"{uri}#{number}", exc.reason, str(exc))


class _BadRecord(Document):
    """One record of a record file that could not be read; the rest of the file goes on."""

    def __init__(self, source_uri: str, reason: str, error: str) -> None:
        super().__init__(source_uri, "", "", "")
        self.reason, self.error = reason, error


def ingest(store: Store, inputs: list[str], run_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> IngestResult:
    """Read every input; store documents not seen before; record every reject with its reason."""
    now = datetime.now(UTC)
    known = set(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist())
    files, missing = expand_inputs(inputs, exclude=store.root)
    rejects = [_reject(m, run_id, "missing-input", "no file matches this input", now) for m in missing]
    new_rows: list[dict[str, Any]] = []
    doc_ids: list[str] = []
    seen: set[str] = set()
    for fs, path in files:
        try:
            for doc in read_file(fs, path, max_bytes):
                if isinstance(doc, _BadRecord):
                    rejects.append(_reject(doc.source_uri, run_id, doc.reason, doc.error, now))
                elif not doc.text.strip():
                    rejects.append(_reject(doc.source_uri, run_id, "empty", "no text", now))
                elif doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    doc_ids.append(doc.doc_id)
                    if doc.doc_id not in known:
                        new_rows.append(_document_row(doc, now))
        except RejectedInput as exc:
            rejects.append(_reject(to_uri(fs, path), run_id, exc.reason, str(exc), now))
    part = store.write_part("documents", new_rows, f"{run_id}-ingest")
    store.write_part("rejects", rejects, f"{run_id}-ingest")
    return IngestResult(doc_ids, len(new_rows), len(doc_ids) - len(new_rows), len(rejects), part)


def _document_row(doc: Document, now: datetime) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "source_uri": doc.source_uri,
        "format": doc.format,
        "title": doc.title,
        "text": doc.text,
        "n_chars": len(doc.text),
        "content_sha256": doc.content_sha256,
        "ingested_at": now,
        "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
    }


def _reject(uri: str, run_id: str, reason: str, error: str, now: datetime) -> dict[str, Any]:
    return {"source_uri": uri, "run_id": run_id, "reason": reason, "error": error, "rejected_at": now}


def load_texts(store: Store, doc_ids: list[str]) -> dict[str, str]:
    """The texts of the given documents."""
    table = store.read("documents", columns=["doc_id", "text"], where=is_in("doc_id", doc_ids))
    return dict(zip(table.column("doc_id").to_pylist(), table.column("text").to_pylist(), strict=True))
