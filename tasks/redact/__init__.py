"""Redaction: personal values in a document replaced by typed placeholders before anything is
stored or seen by a model (`--redact`).

Reads and writes no table: ingest calls `redact_document` on each document once its text is final
and writes `redaction_rows` to `redactions`. Detectors are in `detectors`, placeholders and the
resolution of overlaps in `redact`.
"""

from tasks.redact.document import DocumentRedaction, redact_document, redaction_rows
from tasks.redact.redact import Placeholders, Redacted, detect, redact, scrub, scrub_uri
from tasks.redact.settings import DEFAULT_PHONE_REGIONS, TYPES, RedactSettings

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "TYPES",
    "DocumentRedaction",
    "Placeholders",
    "RedactSettings",
    "Redacted",
    "detect",
    "redact",
    "redact_document",
    "redaction_rows",
    "scrub",
    "scrub_uri",
]
