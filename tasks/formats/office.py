"""PDF (text layer) and DOCX readers: text, title and metadata, or a `RejectedInput`.

Both parse untrusted containers: a PDF parser can fail in any way on a damaged file, and a
DOCX is a zip whose members are checked for size and compression ratio before one is inflated,
then inflated in bounded chunks that stop at the limit: a member's declared size may lie.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from tasks.formats.limits import MIB, Limits, RejectedInput

CHUNK = MIB  # what one step of inflating a zip member may produce

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
CORE = {
    "title": "{http://purl.org/dc/elements/1.1/}title",
    "author": "{http://purl.org/dc/elements/1.1/}creator",
    "subject": "{http://purl.org/dc/elements/1.1/}subject",
    "created": "{http://purl.org/dc/terms/}created",
    "modified": "{http://purl.org/dc/terms/}modified",
}
PDF_INFO = {"/Author": "author", "/Subject": "subject", "/Producer": "producer", "/CreationDate": "created"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def read_pdf(data: bytes, limits: Limits) -> tuple[str, str, dict[str, Any]]:
    """The text layer of a PDF, pages separated by a blank line; page count in the metadata."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files warn at length
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise RejectedInput("encrypted", "the PDF needs a password")
        n_pages = len(reader.pages)
    except RejectedInput:
        raise
    except Exception as exc:  # pypdf raises many types (and RecursionError) for damaged files
        raise RejectedInput("corrupt", f"not a readable PDF: {_first_line(exc)}") from exc
    if n_pages > limits.max_pages:
        raise RejectedInput("too-many-pages", f"{n_pages} pages is over the {limits.max_pages}-page limit")
    pages: list[str] = []
    size = 0
    for number, page in enumerate(reader.pages):
        try:
            text = page.extract_text() or ""
        except Exception as exc:
            raise RejectedInput("corrupt", f"page {number + 1} cannot be read: {_first_line(exc)}") from exc
        size += len(text)
        if size > limits.max_document_bytes:
            raise RejectedInput("too-large", f"text past the {limits.max_document_bytes}-byte limit")
        pages.append(text.strip("\n"))
    meta: dict[str, Any] = {"pages": n_pages}
    title = ""
    try:
        info: Any = reader.metadata or {}
        title = str(info.get("/Title") or "").strip()
        meta |= {name: str(info[key]) for key, name in PDF_INFO.items() if info.get(key)}
    except Exception:  # a damaged info dictionary costs the metadata, not the text
        meta["metadata_error"] = "unreadable document information"
    if not any(p.strip() for p in pages):
        raise RejectedInput("empty", f"no text layer in {n_pages} page(s) (a scan needs OCR first)")
    return "\n\n".join(pages), title, meta


def _opens_without_password(reader: Any) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # e.g. AES without the `cryptography` package: unreadable all the same
        return False


def read_docx(data: bytes, limits: Limits) -> tuple[str, str, dict[str, Any]]:
    """The paragraphs of a Word document (tables included), separated by blank lines."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except Exception as exc:
        raise RejectedInput("corrupt", f"not a readable DOCX (zip): {_first_line(exc)}") from exc
    _check_unpacked_sizes(list(members.values()), limits)
    if "word/document.xml" not in members:
        raise RejectedInput("corrupt", "not a Word document: no word/document.xml")
    body = _xml(archive, members["word/document.xml"], limits)
    paragraphs = _paragraphs(body)
    meta: dict[str, Any] = {}
    if "docProps/core.xml" in members:
        core = _xml(archive, members["docProps/core.xml"], limits)
        meta = {name: el.text.strip() for name, tag in CORE.items() if (el := core.find(tag)) is not None and el.text}
    title = meta.pop("title", "")
    return "\n\n".join(paragraphs), title, meta


def _check_unpacked_sizes(members: list[Any], limits: Limits) -> None:
    """Refuse a zip bomb from its directory, before inflating anything (`_inflate` checks
    again while inflating, for a member whose declared size lies)."""
    total = sum(m.file_size for m in members)
    if total > limits.max_document_bytes:
        limit = limits.max_document_bytes
        raise RejectedInput("archive-bomb", f"unpacks to {total} bytes, over the {limit}-byte limit")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > MIB and ratio > limits.max_unpack_ratio:
            limit = limits.max_unpack_ratio
            raise RejectedInput("archive-bomb", f"{member.filename} inflates {ratio:.0f}x (limit {limit}x)")


def _inflate(archive: Any, member: Any, limits: Limits) -> bytes:
    """A member's bytes, inflated a chunk at a time and refused as soon as they pass the size
    limit. `ZipFile.read` would inflate all the compressed data in one call before cutting it
    at the declared size: a 1.5 MB member declaring 100 kB took 2 GB. (zipfile stops a chunked
    read at the declared size, and then fails the CRC: a lying member is `corrupt`.)"""
    chunks: list[bytes] = []
    size = 0
    with archive.open(member) as stream:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limits.max_document_bytes:
                limit = limits.max_document_bytes
                raise RejectedInput("archive-bomb", f"{member.filename} inflates past the {limit}-byte limit")
            chunks.append(chunk)
    return b"".join(chunks)


def _xml(archive: Any, member: Any, limits: Limits) -> Any:
    from xml.etree import ElementTree

    name = member.filename
    try:
        raw = _inflate(archive, member, limits)
        if b"<!DOCTYPE" in raw[:4096].upper() or b"<!ENTITY" in raw.upper():
            raise RejectedInput("corrupt", f"{name} declares a DTD or entities (not allowed in DOCX)")
        return ElementTree.fromstring(raw)
    except RejectedInput:
        raise
    except Exception as exc:
        raise RejectedInput("corrupt", f"{name} cannot be read: {_first_line(exc)}") from exc


def _paragraphs(root: Any) -> list[str]:
    paragraphs: list[str] = []
    current: list[str] = []
    for element in root.iter():
        tag = element.tag
        if tag == f"{W}p":
            paragraphs.append("".join(current))
            current = []
        elif tag == f"{W}t" and element.text:
            current.append(element.text)
        elif tag == f"{W}tab":
            current.append("\t")
        elif tag in (f"{W}br", f"{W}cr"):
            current.append("\n")
    paragraphs.append("".join(current))
    return [p for p in paragraphs if p.strip()]
