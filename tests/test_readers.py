"""Readers: every format, the encodings of real inboxes, newlines, limits and damaged files."""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.readers import Limits, RejectedInput, decode, normalize_newlines, read_documents
from tests.sample_files import make_docx, make_pdf, make_zip_bomb

PROSE = "The committee met on Tuesday.\n\nIt agreed the budget, after a long debate about the library."
CHINESE = "会议在星期二举行。委员会讨论了图书馆的预算，经过长时间的辩论后同意了。" * 3
JAPANESE = "委員会は火曜日に開かれました。図書館の予算について長い議論の後、合意しました。" * 3


def read_one(name: str, data: bytes, limits: Limits | None = None):
    suffix = "." + name.rsplit(".", 1)[1]
    docs = list(read_documents(f"file:///in/{name}", suffix, name.rsplit(".", 1)[0], data, limits or Limits()))
    assert len(docs) == 1
    return docs[0]


def reason_of(name: str, data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(RejectedInput) as caught:
        list(read_documents(f"file:///in/{name}", "." + name.rsplit(".", 1)[1], "x", data, limits or Limits()))
    assert str(caught.value)  # every reject says why
    return caught.value.reason


@pytest.mark.parametrize(
    ("text", "data", "encodings"),
    [
        (PROSE, PROSE.encode("utf-8"), {"utf-8"}),
        (PROSE + " Café", codecs.BOM_UTF8 + (PROSE + " Café").encode("utf-8"), {"utf-8"}),
        (PROSE + " — naïve", codecs.BOM_UTF16_LE + (PROSE + " — naïve").encode("utf-16-le"), {"utf-16-le"}),
        (PROSE + " — naïve", codecs.BOM_UTF16_BE + (PROSE + " — naïve").encode("utf-16-be"), {"utf-16-be"}),
        ("Café, déjà vu — “quoted” €5 façade.", "Café, déjà vu — “quoted” €5 façade.".encode("cp1252"), {"cp1252"}),
        (
            "Garçon, où est la bière? Ça coûte cher.",
            "Garçon, où est la bière? Ça coûte cher.".encode("latin-1"),
            {"cp1252", "latin_1", "iso8859_15"},
        ),
        (CHINESE, CHINESE.encode("gb18030"), {"gb18030", "gb2312", "gbk"}),
        (JAPANESE, JAPANESE.encode("shift_jis"), {"shift_jis", "cp932"}),
    ],
)
def test_encodings_are_detected(text: str, data: bytes, encodings: set[str]) -> None:
    decoded, encoding = decode(data)
    assert decoded == text and encoding in encodings


def test_binary_and_broken_text_are_rejected() -> None:
    assert reason_of("a.txt", bytes(range(256)) * 8) == "binary"
    assert reason_of("b.txt", ("naïve café " * 50).encode("utf-8")[:-1] + b"\xff" + b" end") == "undecodable"
    assert reason_of("c.txt", codecs.BOM_UTF16_LE + b"\x00\xd8\x41") == "undecodable"  # lone surrogate
    assert reason_of("d.md", b"   \n\t ") == "empty"
    assert reason_of("e.txt", b"") == "empty"


def test_newlines_are_normalized_and_the_rest_kept() -> None:
    doc = read_one("crlf.txt", b"line one\r\nline two\rline three\n\n  indented\ttab  \r\n")
    assert doc.text == "line one\nline two\nline three\n\n  indented\ttab  \n"
    records = b'{"id": "r", "text": "a\\r\\nb"}\r\n'
    (record,) = read_documents("file:///in/r.jsonl", ".jsonl", "r", records, Limits())
    assert record.text == "a\nb" and record.source_uri == "file:///in/r.jsonl#r"


def test_pdf_text_layer_title_and_page_count() -> None:
    doc = read_one("report.pdf", make_pdf(["Annual report\nVisits rose.", "Page two (final)."], title="City Report"))
    assert doc.format == "pdf" and doc.title == "City Report"
    assert doc.metadata["pages"] == 2 and doc.metadata["author"] == "longdoc tests"
    assert "Annual report" in doc.text and "Visits rose." in doc.text and "Page two (final)." in doc.text
    assert doc.text.index("Visits") < doc.text.index("Page two")


def test_pdf_limits_and_damage() -> None:
    pdf = make_pdf([f"Page {i}" for i in range(5)])
    assert reason_of("many.pdf", pdf, Limits(max_pages=4)) == "too-many-pages"
    assert read_one("ok.pdf", pdf, Limits(max_pages=5)).metadata["pages"] == 5
    assert reason_of("cut.pdf", pdf[: len(pdf) // 3]) == "corrupt"
    assert reason_of("junk.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 4) == "corrupt"
    assert reason_of("scan.pdf", make_pdf([""])) == "empty"


def test_encrypted_pdf_needs_its_password() -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    def encrypted(password: str) -> bytes:
        writer = PdfWriter()
        for page in PdfReader(io.BytesIO(make_pdf(["Secret minutes."]))).pages:
            writer.add_page(page)
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    assert reason_of("locked.pdf", encrypted("secret")) == "encrypted"
    assert "Secret minutes." in read_one("open.pdf", encrypted("")).text  # no user password: readable


def test_docx_paragraphs_tables_and_title() -> None:
    data = make_docx(
        ["First paragraph.", "", "Second — with “quotes”."], title="Minutes", table=[["a", "b"], ["c", "d"]]
    )
    doc = read_one("minutes.docx", data)
    assert doc.format == "docx" and doc.title == "Minutes"
    assert doc.text.startswith("First paragraph.\n\nSecond — with “quotes”.")
    assert all(cell in doc.text for cell in "abcd")


def test_docx_bombs_and_damage_are_rejected() -> None:
    assert reason_of("bomb.docx", make_zip_bomb()) == "archive-bomb"
    small = make_docx(["x" * 4000])
    assert reason_of("big.docx", small, Limits(max_document_bytes=2000)) == "archive-bomb"
    assert reason_of("cut.docx", small[: len(small) // 2]) == "corrupt"
    assert reason_of("notword.docx", make_zip_bomb("other.xml", 10)) == "corrupt"
    assert reason_of("random.docx", bytes(range(256)) * 4) == "corrupt"


def test_size_limits_apply_to_records_too() -> None:
    lines = [json.dumps({"id": "small", "text": "short"}), json.dumps({"id": "big", "text": "y" * 5000})]
    data = "\n".join(lines).encode()
    docs = list(read_documents("file:///in/r.jsonl", ".jsonl", "r", data, Limits(max_document_bytes=1000)))
    assert docs[0].text == "short" and docs[0].reject is None
    assert docs[1].reject is not None and docs[1].reject.reason == "too-large"


def test_html_main_text_and_deep_nesting() -> None:
    page = b"<html><head><title>T</title></head><body><nav>menu</nav><p>Body\r\ntext.</p></body></html>"
    doc = read_one("p.html", page)
    assert doc.title == "T" and doc.text == "Body text."
    deep = b"<html><body>" + b"<div>" * 20000 + b"deep text" + b"</div>" * 20000 + b"</body></html>"
    assert "deep text" in read_one("deep.html", deep).text


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\r\n\t"), min_size=1))
def test_any_text_reads_back_exactly_but_for_newlines(text: str) -> None:
    for data in (text.encode("utf-8"), codecs.BOM_UTF16_LE + text.encode("utf-16-le")):
        try:
            doc = read_one("t.txt", data)
        except RejectedInput as exc:
            assert exc.reason == "empty" and not text.strip()
            continue
        assert doc.text == normalize_newlines(text) and "\r" not in doc.text
