"""Formats: one input file's bytes to documents (text, markdown, records, HTML, PDF, DOCX).

Reads and writes no table: ingest and scoring call `read_documents`. A new reader goes in its own
module here and is dispatched from `readers.read_documents`.
"""

from tasks.formats.limits import Limits, RejectedInput
from tasks.formats.readers import FORMATS, Document, read_documents

__all__ = ["FORMATS", "Document", "Limits", "RejectedInput", "read_documents"]
