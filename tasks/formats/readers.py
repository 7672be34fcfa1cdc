"""Readers: one input file's bytes to documents, per format, within configurable limits.

Every failure is a `RejectedInput` with a short reason code; the caller records it and goes on.
Newlines are normalized to "\\n" in every document; the text is otherwise kept as read.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.formats.html import html_shape, html_to_text
from tasks.formats.limits import MIB, RECORD_FORMATS, Limits, RejectedInput

TEXT_FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md"}
HTML_FORMATS = {".html": "html", ".htm": "html", ".xhtml": "html"}
BINARY_FORMATS = {".pdf": "pdf", ".docx": "docx"}
FORMATS = TEXT_FORMATS | HTML_FORMATS | RECORD_FORMATS | BINARY_FORMATS
COMMON_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "cp1251", "shift_jis", "gb18030", "big5", "euc_kr", "cp1250")
CHAOS_MARGIN = 0.1
BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_ASCII = bytes(range(0x80))
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass
class Document:
    source_uri: str
    format: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    reject: RejectedInput | None = None  # set for one bad record of a record file
    identity: str = ""  # how the text was made, when not as read (tasks/redact: the settings' key)

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.text, self.identity)


def doc_id_for(text: str, identity: str = "") -> str:
    """A document's identity is its text: the same text ingested twice is one document. A text
    made otherwise than as read (redacted) adds how (`identity`), so it never shares an id with
    a text read as it came, even where redaction found nothing to replace."""
    tagged = text if not identity else f"{text}\x00{identity}"
    return hashlib.sha256(tagged.encode("utf-8")).hexdigest()[:20]


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes) -> tuple[str, str]:
    """Bytes to text: a byte-order mark decides; else UTF-8 when valid; else the best detected
    encoding. Binary data and broken UTF-8 are rejected rather than read as mojibake."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise RejectedInput("undecodable", f"invalid {encoding} at byte {exc.start + len(bom)}") from exc
    if b"\x00" in data:
        raise RejectedInput("binary", "binary data (NUL bytes) in a text file")
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        if _mostly_utf8(data):
            raise RejectedInput("undecodable", f"invalid UTF-8 at byte {exc.start}") from exc
    return _checked(*_detect(data))


def _mostly_utf8(data: bytes) -> bool:
    """Nearly all non-ASCII bytes form UTF-8 sequences: broken UTF-8, not a legacy code page."""
    sample = data[:MIB]
    high = len(sample.translate(None, _ASCII))
    in_sequences = sum(len(m) for m in _UTF8_MULTIBYTE.findall(sample))
    return high > 0 and in_sequences / high >= 0.9


def _detect(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.encoding is None:
        raise RejectedInput("undecodable", "no text encoding fits these bytes")
    # Short texts fit several code pages about equally well (a rare code page may even score a
    # little better): take the most widely used of those close to the best.
    close = {m.encoding: m for m in matches if m.chaos <= best.chaos + CHAOS_MARGIN}
    chosen = next((close[e] for e in COMMON_ENCODINGS if e in close), best)
    return str(chosen), chosen.encoding


def _checked(text: str, encoding: str) -> tuple[str, str]:
    controls = len(_CONTROL.findall(text[:100_000]))
    if controls > max(8, len(text[:100_000]) // 100):
        raise RejectedInput("binary", f"binary data: {controls} control characters read as {encoding}")
    return text, encoding


def _title_from_markdown(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def read_documents(uri: str, suffix: str, stem: str, data: bytes, limits: Limits) -> Iterator[Document]:
    """The documents in one file's bytes: one for a document file, one per record otherwise."""
    if not data.removeprefix(b"\xef\xbb\xbf").strip():  # a byte-order mark alone is no content either
        raise RejectedInput("empty", "no content")
    if suffix == ".parquet":
        docs: Iterator[Document] = _parquet_records(uri, data, limits)
    elif suffix in BINARY_FORMATS:
        from tasks.formats.office import read_docx, read_pdf

        reader = read_pdf if suffix == ".pdf" else read_docx
        text, title, meta = reader(data, limits)
        docs = iter([Document(uri, BINARY_FORMATS[suffix], title or stem, text, meta | {"bytes": len(data)})])
    else:
        text, encoding = decode(data)
        meta = {"bytes": len(data), "encoding": encoding}
        if suffix in RECORD_FORMATS:
            docs = _jsonl_records(uri, text, limits)
        elif suffix in HTML_FORMATS:
            docs = iter([_html_document(uri, stem, text, meta, limits)])
        else:
            fmt = TEXT_FORMATS[suffix]
            title = _title_from_markdown(text, stem) if fmt == "md" else stem
            docs = iter([Document(uri, fmt, title, text, meta)])
    for doc in docs:
        doc.text = normalize_newlines(doc.text)
        yield doc


def record_id(value: Any, number: int) -> str:
    """A record's id as it goes into `source_uri` after the `#`: the id's text (a string as is;
    a number, boolean, object or array as its canonical JSON; a null or missing id: the record
    number) with every byte of its UTF-8 but letters, digits and `-._~` percent-encoded, as a
    file name's bytes are in the URI: `a b/c#d` -> `a%20b%2Fc%23d`."""
    from urllib.parse import quote

    text = str(number) if value is None else _id_text(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _html_document(uri: str, stem: str, html: str, meta: dict[str, Any], limits: Limits) -> Document:
    """An HTML page's text, refused before parsing when shaped so that parsing would take
    minutes (a linear pre-scan estimates the shape)."""
    shape = html_shape(html, limits.max_html_depth, limits.max_html_options)
    if shape.depth > limits.max_html_depth:
        raise RejectedInput("too-deep", f"elements nested more than {limits.max_html_depth} deep")
    if shape.options > limits.max_html_options:
        raise RejectedInput("too-complex", f"more than {limits.max_html_options} <option>s in <select> lists")
    body, title = html_to_text(html)
    return Document(uri, "html", title or stem, body, meta)


def _record_document(uri: str, number: int, record: Any, fmt: str, limits: Limits) -> Document:
    if not isinstance(record, dict):
        raise RejectedInput("bad-record", f"record {number} is not an object")
    text = record.get("text")
    if not isinstance(text, str):
        raise RejectedInput("bad-record", f"record {number} has no string 'text' field")
    size = len(text.encode("utf-8", "surrogatepass"))
    if len(text) > limits.max_document_bytes or size > limits.max_document_bytes:
        raise RejectedInput("too-large", f"record {number}: text over the {limits.max_document_bytes}-byte limit")
    rec_id = record_id(record.get("id"), number)
    metadata = {k: v for k, v in record.items() if k != "text"}
    label = record.get("title") or record.get("id")  # the id unescaped: a title is for reading
    title = str(number) if label in (None, "") else _id_text(label)
    return Document(f"{uri}#{rec_id}", fmt, title, text, metadata)


def _bad_record(source_uri: str, reject: RejectedInput) -> Document:
    return Document(source_uri, "", "", "", reject=reject)


def _record(uri: str, number: int, record: Any, fmt: str, limits: Limits, where: str, seen: dict[str, str]) -> Document:
    """One record's document, or its reject. A record whose id (as it reads in `source_uri`) an
    earlier record of the file already has is a `duplicate-id` reject: the first one keeps the
    id, so appending a record to a file never takes the name from one read before."""
    try:
        doc = _record_document(uri, number, record, fmt, limits)
    except RejectedInput as exc:
        return _bad_record(where, exc)
    first = seen.setdefault(doc.source_uri, where)
    if first != where:
        rec_id = doc.source_uri.rsplit("#", 1)[1]
        return _bad_record(where, RejectedInput("duplicate-id", f"id '{rec_id}' is taken by {first.rsplit('#', 1)[1]}"))
    return doc


def _jsonl_records(
    uri: str, text: str, limits: Limits, first_number: int = 0, seen: dict[str, str] | None = None
) -> Iterator[Document]:
    seen = {} if seen is None else seen
    for number, line in enumerate(text.splitlines(), start=first_number):
        if not line.strip():
            continue
        where = f"{uri}#line-{number + 1}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # ValueError: also an integer of 5000 digits
            yield _bad_record(where, RejectedInput("bad-record", f"invalid JSON: {str(exc)[:200]}"))
            continue
        yield _record(uri, number, record, "jsonl", limits, where, seen)


def _parquet_records(uri: str, data: bytes, limits: Limits) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise RejectedInput("corrupt", f"not a readable Parquet file: {str(exc)[:200]}") from exc
    yield from _table_records(uri, table, limits)


def _table_records(
    uri: str, table: Any, limits: Limits, first_number: int = 0, seen: dict[str, str] | None = None
) -> Iterator[Document]:
    if "text" not in table.column_names:
        raise RejectedInput("bad-record", "Parquet file has no 'text' column")
    seen = {} if seen is None else seen
    for number, record in enumerate(table.to_pylist(), start=first_number):
        yield _record(uri, number, record, "parquet", limits, f"{uri}#{number}", seen)


def read_record_range(
    uri: str, records: Any, first_number: int, limits: Limits, taken: Mapping[str, str] | None = None
) -> Iterator[Document]:
    """The documents of a range of a record file whose first record is number `first_number`
    of the file: `records` is the range's JSONL bytes (whole lines, UTF-8, no byte-order mark) or its Parquet rows
    (a pyarrow Table). Numbers, ids and `source_uri`s are those a whole-file read gives. `taken`
    maps the `source_uri`s that records of earlier ranges claimed to the first claimer's place
    (`record_claims`): a record of this range with such an id is a `duplicate-id` reject, as in
    a whole-file read."""
    seen = dict(taken or {})
    if isinstance(records, bytes):
        text = records.decode("utf-8")  # the caller leaves out a byte-order mark
        docs = _jsonl_records(uri, text, limits, first_number, seen)
    else:
        docs = _table_records(uri, records, limits, first_number, seen)
    for doc in docs:
        doc.text = normalize_newlines(doc.text)
        yield doc


def record_claims(uri: str, records: Any, first_number: int, limits: Limits) -> dict[str, str]:
    """The `source_uri`s the records of one range claim (the first record of each id that is a
    document), each mapped to its claimer's place (`<uri>#line-N` / `<uri>#N`), in file order."""
    seen: dict[str, str] = {}
    docs = _jsonl_records if isinstance(records, bytes) else _table_records
    data = records.decode("utf-8") if isinstance(records, bytes) else records
    for _ in docs(uri, data, limits, first_number, seen):
        pass
    return seen
