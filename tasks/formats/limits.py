"""What one input may cost, and the rejection every reader raises past it.

Below the readers (`readers`, `office`, `html`): each imports these, none imports another to get them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
RECORD_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Bumped when a reader's output changes, so that files read by an older version are read again.
READERS_VERSION = 3


@dataclass(frozen=True)
class Limits:
    """What one input may cost. A file or document past a limit is rejected with the reason."""

    max_document_bytes: int = 64 * MIB  # a document file, a record's text, a DOCX unpacked
    max_pages: int = 2000  # PDF pages
    max_record_file_bytes: int = 1024 * MIB  # a jsonl/parquet file holding many documents
    max_unpack_ratio: int = 100  # a zip member inflating more than this (past 1 MiB) is a bomb
    max_html_depth: int = 512  # HTML elements nested deeper (parse time grows with depth x tags)
    max_html_options: int = 20_000  # <option>s in <select> lists (parse time grows with their square)

    def file_limit(self, suffix: str) -> int:
        return self.max_record_file_bytes if suffix in RECORD_FORMATS else self.max_document_bytes

    @property
    def key(self) -> str:
        """These limits and the readers' version: a file read under other ones is read again."""
        return (
            f"readers={READERS_VERSION};bytes={self.max_document_bytes};pages={self.max_pages};"
            f"records={self.max_record_file_bytes};ratio={self.max_unpack_ratio};"
            f"depth={self.max_html_depth};options={self.max_html_options}"
        )


class RejectedInput(Exception):
    """An input longdoc cannot turn into a document; `reason` is a short code."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
