"""A document redacted whole: its text, title, metadata (every field of a record) and source URI
share one set of placeholders; the rows of `redactions` record where they lie in the text."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.formats.readers import Document
from tasks.redact.redact import Placeholders, redact, scrub_uri
from tasks.redact.settings import TYPES, RedactSettings


@dataclass
class DocumentRedaction:
    spans: dict[str, list[tuple[int, int]]]  # placeholders in the stored text, per type
    values: Counter[str]  # distinct values (placeholders) per type, in the whole document
    elsewhere: Counter[str]  # values replaced outside the text: title, metadata, source URI


def redact_document(
    doc: Document, settings: RedactSettings, uri_placeholders: Placeholders | None = None
) -> tuple[Document, DocumentRedaction]:
    """The document as it may be stored; its identity carries the settings (`identity`), so a
    redacted and an unredacted reading of the same file are two documents. Placeholders are
    numbered in the order text, title, metadata; those in `source_uri` per input file
    (`uri_placeholders`, shared by its records, so each record keeps a URI of its own)."""
    names = Placeholders()
    for part in (doc.text, doc.title, json.dumps(doc.metadata, ensure_ascii=False, default=str)):
        names.reserve(part)
    elsewhere: Counter[str] = Counter()

    def field_(value: str) -> str:
        result = redact(value, settings, names)
        elsewhere.update({t: len(s) for t, s in result.spans.items()})
        return result.text

    text = redact(doc.text, settings, names)
    title = field_(doc.title)
    metadata = _redact_value(doc.metadata, field_)
    uri = scrub_uri(doc.source_uri, settings, uri_placeholders)
    if uri != doc.source_uri:
        elsewhere["source_uri"] += 1
    values = Counter(type_ for type_, _ in names.names)
    redacted = dataclasses.replace(
        doc, text=text.text, title=title, metadata=metadata, source_uri=uri, identity=settings.key
    )
    return redacted, DocumentRedaction(text.spans, values, elsewhere)


def _redact_value(value: Any, redact_text: Any) -> Any:
    """Every string of a JSON-like value, keys too; a number that holds a value (a phone number
    or card number stored as an integer) becomes the placeholder's string."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): _redact_value(v, redact_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, redact_text) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
        redacted = redact_text(text)
        return value if redacted == text else redacted
    if value is None or isinstance(value, bool):
        return value
    text = str(value)  # dates, bytes... stored as their text anyway
    redacted = redact_text(text)
    return value if redacted == text else redacted


def redaction_rows(doc_id: str, redaction: DocumentRedaction, run_id: str, now: datetime) -> list[dict[str, Any]]:
    """One `redactions` row per type found: counts and placeholder spans, never a value."""
    rows = []
    for type_ in TYPES:
        spans = redaction.spans.get(type_, [])
        if not spans and not redaction.values[type_]:
            continue
        rows.append(
            {
                "doc_id": doc_id,
                "type": type_,
                "count": len(spans),
                "values": redaction.values[type_],
                "elsewhere": redaction.elsewhere[type_],
                "spans": json.dumps([list(s) for s in spans]),
                "run_id": run_id,
                "redacted_at": now,
            }
        )
    return rows
