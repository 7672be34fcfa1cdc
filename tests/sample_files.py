"""Documents in every supported format, made on the fly (no binary fixtures): minimal PDFs with
a text layer written by hand, DOCX written by python-docx, zip bombs and malformed variants."""

from __future__ import annotations

import io
import zipfile


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A PDF whose pages carry `pages` as a text layer (Helvetica, one line per text line)."""
    n = len(pages)
    font, first_page = 3, 4  # objects: 1 catalog, 2 pages, 3 font, then page/content pairs, then info
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(n))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        lines = " T* ".join(f"{_pdf_string(line)} Tj" for line in text.split("\n"))
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {lines} ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> "
            f"/Contents {first_page + 2 * i + 1} 0 R >>"
        )
        objects.append(f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream")
    info = len(objects) + 1
    objects.append(f"<< /Title {_pdf_string(title)} /Author (longdoc tests) >>" if title else "<< >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    out.write(trailer.encode())
    return out.getvalue()


def make_docx(paragraphs: list[str], title: str | None = None, table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    if title:
        document.core_properties.title = title
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip_bomb(member: str = "word/document.xml", size: int = 8 * 1024 * 1024) -> bytes:
    """A DOCX-shaped zip whose document inflates ~1000x."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(member, b"<w:p>" + b"A" * size + b"</w:p>")
    return out.getvalue()


def make_lying_docx(inflated_mib: int = 1500, declared: int = 100_000) -> bytes:
    """A DOCX-shaped zip whose word/document.xml inflates to `inflated_mib` MiB but whose size
    fields declare `declared` bytes (so it passes a check of the declared sizes and ratios).
    The deflate stream is one compressed MiB repeated: ~1 kB per MiB, made in milliseconds."""
    import struct
    import zlib

    mib = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = mib.compress(b"A" * (1 << 20)) + mib.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, self-contained
    deflated = block * inflated_mib + b"\x03\x00"  # then an empty final block
    members = [(b"[Content_Types].xml", b"<Types/>", 0, 8), (b"word/document.xml", deflated, 8, declared)]
    out, central = bytearray(), bytearray()
    for name, data, method, size in members:
        offset, crc = len(out), zlib.crc32(data) if method == 0 else 0
        fields = (method, 0, 0x21, crc, len(data), size, len(name))
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, *fields, 0) + name + data
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, *fields, 0, 0, 0, 0, 0, offset)
        central += name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(central), len(out), 0)
    return bytes(out + central + end)
