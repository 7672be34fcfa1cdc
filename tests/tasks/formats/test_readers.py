"""Readers: every format, the encodings of real inboxes, newlines, limits and damaged files."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.formats.html import html_shape
from tasks.formats.limits import Limits, RejectedInput
from tasks.formats.readers import decode, normalize_newlines, read_documents, record_id
from tests.sample_files import make_docx, make_lying_docx, make_pdf, make_zip_bomb

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


def test_a_docx_member_lying_about_its_size_is_inflated_in_bounded_chunks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """1.5 MB that inflates to 1.5 GB but declares 100 kB: read whole, it cost 2.1 GB."""
    import subprocess
    import sys

    (tmp_path / "lying.docx").write_bytes(make_lying_docx(inflated_mib=1500, declared=100_000))
    # VmHWM, not getrusage: ru_maxrss survives execve, so a child of a big pytest process would
    # report the parent's peak; VmHWM belongs to the child's own address space.
    script = (
        "import re, sys; from pathlib import Path; from tests.tasks.formats.test_readers import reason_of; "
        "reason = reason_of('lying.docx', Path(sys.argv[1]).read_bytes()); "
        "kb = re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text())[1]; "
        "print(reason, int(kb) // 1024)"
    )
    root = Path(__file__).parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "lying.docx")], capture_output=True, text=True, cwd=root
    )
    assert done.returncode == 0, done.stderr
    reason, peak_mb = done.stdout.split()
    assert reason == "corrupt" and int(peak_mb) < 300  # a resource bound (it is ~25 MB), not a speed


def test_inflating_stops_at_the_limit() -> None:
    import io
    import zipfile

    from tasks.formats.office import _inflate

    archive = zipfile.ZipFile(io.BytesIO(make_zip_bomb(size=3 * 1024 * 1024)))
    member = archive.getinfo("word/document.xml")
    with pytest.raises(RejectedInput, match="inflates past the 2097152-byte limit") as caught:
        _inflate(archive, member, Limits(max_document_bytes=2 * 1024 * 1024))
    assert caught.value.reason == "archive-bomb"
    assert len(_inflate(archive, member, Limits())) == member.file_size


def test_record_ids_are_percent_encoded_into_the_source_uri() -> None:
    ids = ["m1", "a\nb", "x\u202etxt.exe", "sp ace#hash/slash%", "café", None, 7, 1.5, True, {"b": [1, 2], "a": "é"}]
    lines = [json.dumps({"id": rec_id, "text": f"text {n}"}) for n, rec_id in enumerate(ids)]
    lines.append(json.dumps({"text": "no id"}))
    docs = list(read_documents("file:///in/r.jsonl", ".jsonl", "r", "\n".join(lines).encode(), Limits()))
    assert [d.source_uri.removeprefix("file:///in/r.jsonl#") for d in docs] == [
        "m1",
        "a%0Ab",
        "x%E2%80%AEtxt.exe",
        "sp%20ace%23hash%2Fslash%25",
        "caf%C3%A9",
        "5",  # a null id: the record number (counted from 0, as without an id)
        "7",
        "1.5",
        "true",
        "%7B%22a%22%3A%22%C3%A9%22%2C%22b%22%3A%5B1%2C2%5D%7D",  # canonical JSON: {"a":"é","b":[1,2]}
        "10",
    ]
    assert [d.title for d in docs][:3] == ["m1", "a\nb", "x\u202etxt.exe"]  # a title is for reading
    assert docs[9].title == '{"a":"é","b":[1,2]}' and all(d.reject is None for d in docs)


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.none(), st.lists(st.text())))
def test_a_record_id_is_ascii_and_reads_back(value) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import unquote_to_bytes

    encoded = record_id(value, 3)
    assert encoded.isascii() and encoded.isprintable() and "#" not in encoded and "/" not in encoded
    as_json = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    expected = "3" if value is None else value if isinstance(value, str) else as_json
    assert unquote_to_bytes(encoded) == expected.encode("utf-8", "surrogatepass")


def test_duplicate_ids_in_one_file_are_rejects_after_the_first() -> None:
    records = [("a", "one"), ("a", "two"), (None, "three"), ("2", "four"), (2, "five"), ("b", "six")]
    data = "\n".join(json.dumps({"id": i, "text": t}) for i, t in records).encode()
    docs = list(read_documents("file:///in/r.jsonl", ".jsonl", "r", data, Limits()))
    kept = [(d.source_uri.rsplit("#", 1)[1], d.text) for d in docs if d.reject is None]
    assert kept == [("a", "one"), ("2", "three"), ("b", "six")]  # record 2 has no id: "2" is taken
    rejected = [(d.source_uri.rsplit("#", 1)[1], d.reject.reason, str(d.reject)) for d in docs if d.reject]
    assert rejected == [
        ("line-2", "duplicate-id", "id 'a' is taken by line-1"),
        ("line-4", "duplicate-id", "id '2' is taken by line-3"),
        ("line-5", "duplicate-id", "id '2' is taken by line-3"),
    ]


def test_duplicate_ids_in_a_parquet_file_too() -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"id": ["x", "x", None], "text": ["one", "two", "three"]}), out)
    docs = list(read_documents("file:///in/r.parquet", ".parquet", "r", out.getvalue(), Limits()))
    assert [(d.source_uri.rsplit("#", 1)[1], d.reject.reason if d.reject else None) for d in docs] == [
        ("x", None),
        ("1", "duplicate-id"),  # a record of a Parquet file is named by its number
        ("2", None),
    ]


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
    deep = b"<html><body>" + b"<div>" * 500 + b"deep text" + b"</div>" * 500 + b"</body></html>"
    assert "deep text" in read_one("deep.html", deep).text
    assert reason_of("deep.html", deep, Limits(max_html_depth=499)) == "too-deep"


def test_a_hundred_thousand_nested_divs_are_refused_in_moments() -> None:
    import time

    deep = b"<html><body>" + b"<div>" * 100_000 + b"deep text" + b"</div>" * 100_000 + b"</body></html>"
    start = time.perf_counter()
    assert reason_of("deep.html", deep) == "too-deep"  # parsing it took ~40 s
    assert time.perf_counter() - start < 5  # a generous bound: the pre-scan stops at depth 513


def test_a_select_list_of_too_many_options_is_refused_in_moments() -> None:
    import time

    options = "".join(f"<option>{n}</option>" for n in range(100_000))
    start = time.perf_counter()
    assert reason_of("form.html", f"<select>{options}</select>".encode()) == "too-complex"  # parsed: over a minute
    assert time.perf_counter() - start < 5
    grouped = "".join(f"<optgroup>{options[:2000]}</optgroup>" for _ in range(100))  # fast to parse: not counted
    assert html_shape(f"<select>{grouped}</select>", 512, 20_000).options == 0
    few = "<p>Pick</p><select>" + "".join(f"<option>{n}</option>" for n in range(1000)) + "</select>"
    assert reason_of("few.html", few.encode(), Limits(max_html_options=999)) == "too-complex"
    assert "Pick" in read_one("ok.html", few.encode(), Limits(max_html_options=1000)).text


@pytest.mark.parametrize(
    ("shape", "deep"),
    [  # markup whose elements close themselves, or hold no tags, is not deep however long
        ("<p>para" * 3000, False),
        ("<ul>" + "<li>item" * 3000 + "</ul>", False),
        ("<table>" + "<tr><td><div>cell <b>x" * 3000 + "</table>", False),
        ("<dl>" + "<dt>t<dd>d" * 3000 + "</dl>", False),
        ("<select>" + "<option>o" * 3000 + "</select>", False),
        ("<p><font>x" * 3000, False),
        ("<svg>" + '<path d="M0 0"/>' * 3000 + "</svg>", False),
        ("<script>" + "<div>" * 3000 + "</script><!--" + "<div>" * 3000 + "--><p>x", False),
        ("<div/>" * 3000, True),  # in HTML the slash means nothing: these are nested
        ("<ul><li>" * 3000, True),  # a list in each item
        ("<dl><dt>" * 3000, True),
        ("<b>x" * 3000, True),
        ("<table><tr><td>" * 3000, True),
        ("<a><div>x</a>" * 3000, True),  # each div stays open (and took 3 s at 20k, quadratic)
        ("<b><div>x</b></div>" * 3000, False),
        ("<p><b>x</b></p><i>y</i>" * 3000, False),
    ],
)
def test_the_depth_estimate_follows_how_html_nests(shape: str, deep: bool) -> None:
    assert (html_shape("<html><body>" + shape + "</body></html>", 512, 10**6).depth > 512) is deep


tree = st.recursive(
    st.just(""), lambda kids: st.tuples(st.sampled_from(["div", "span", "section", "b"]), st.lists(kids))
)


def _html_and_depth(node) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    if node == "":
        return "text", 0
    name, kids = node
    parts = [_html_and_depth(kid) for kid in kids]
    inner = "".join(html for html, _ in parts)
    return f"<{name}>{inner}</{name}>", 1 + max((depth for _, depth in parts), default=0)


@given(tree)
def test_the_depth_of_well_formed_html_is_exact(node) -> None:  # type: ignore[no-untyped-def]
    html, depth = _html_and_depth(node)
    assert html_shape(html, 10_000, 0).depth == depth


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\r\n\t"), min_size=1))
def test_any_text_reads_back_exactly_but_for_newlines(text: str) -> None:
    for data in (text.encode("utf-8"), codecs.BOM_UTF16_LE + text.encode("utf-16-le")):
        try:
            doc = read_one("t.txt", data)
        except RejectedInput as exc:
            assert exc.reason == "empty" and not text.strip()
            continue
        assert doc.text == normalize_newlines(text) and "\r" not in doc.text
