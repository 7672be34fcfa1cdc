"""Ingest: formats, record files, deduplication, rejects, and the data directory left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.datasets import Store
from tasks.ingest import doc_id_for, ingest, load_texts


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    box = tmp_path / "inbox"
    (box / "nested").mkdir(parents=True)
    (box / "plain.txt").write_text("First line of a plain file.\n\nSecond paragraph.", encoding="utf-8")
    (box / "nested" / "notes.md").write_text("Intro text\n\n# The Real Title\n\nBody [SEP] text.", encoding="utf-8")
    (box / "page.html").write_text(
        "<html><head><title>Page Title</title><script>var x = 1;</script></head><body>"
        "<nav>Home | About</nav><main><h1>Heading</h1><p>First <b>bold</b> paragraph.</p>"
        "<p>Second paragraph.</p></main><footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    records = [
        {"id": "m1", "text": "Record one text.", "label": "x"},
        {"text": "Record two text.", "speaker": "A"},
        {"id": "m3", "body": "no text field"},
    ]
    lines = [json.dumps(r) for r in records] + ["{not json"]
    (box / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (box / "latin1.txt").write_bytes("Café au lait, déjà vu, naïve façade — übermäßig.".encode("cp1252"))
    (box / "copy.txt").write_text("First line of a plain file.\n\nSecond paragraph.", encoding="utf-8")
    (box / "empty.txt").write_text("  \n ", encoding="utf-8")
    (box / "image.png").write_bytes(b"\x89PNG\r\n")
    return box


def test_ingest_reads_formats_dedups_and_rejects(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(inbox / "longdoc-data"))  # a data directory inside the input: never ingested
    result = ingest(store, [str(inbox), str(tmp_path / "missing.txt")], "run1")
    docs = {d["source_uri"].rsplit("/", 1)[-1]: d for d in store.read("documents").to_pylist()}
    assert set(docs) == {"copy.txt", "notes.md", "page.html", "records.jsonl#m1", "records.jsonl#1", "latin1.txt"}
    assert result.new_documents == 6 and len(result.doc_ids) == 6  # plain.txt is copy.txt again (first in order wins)
    assert docs["notes.md"]["title"] == "The Real Title"
    page = docs["page.html"]
    assert page["title"] == "Page Title"
    assert "First bold paragraph.\n\nSecond paragraph." in page["text"]
    assert "Home" not in page["text"] and "var x" not in page["text"] and "Copyright" not in page["text"]
    assert json.loads(docs["records.jsonl#m1"]["metadata"]) == {"id": "m1", "label": "x"}
    assert docs["latin1.txt"]["text"].startswith("Café au lait, déjà vu")
    assert docs["copy.txt"]["doc_id"] == doc_id_for(docs["copy.txt"]["text"])
    rejects = {r["source_uri"].rsplit("/", 1)[-1]: r["reason"] for r in store.read("rejects").to_pylist()}
    assert rejects == {
        "records.jsonl#line-3": "bad-record",
        "records.jsonl#line-4": "bad-record",
        "empty.txt": "empty",
        "image.png": "unsupported-format",
        "missing.txt": "missing-input",
    }


def test_a_second_ingest_stores_nothing_new(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    first = ingest(store, [str(inbox)], "run1")
    second = ingest(store, [str(inbox)], "run2")
    assert second.new_documents == 0 and second.known_documents == first.new_documents
    assert second.doc_ids == first.doc_ids
    assert store.read("documents").num_rows == first.new_documents
    texts = load_texts(store, second.doc_ids)
    assert set(texts) == set(first.doc_ids)


def test_globs_select_files(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    result = ingest(store, [str(inbox / "*.txt")], "run1")
    uris = store.read("documents", columns=["source_uri"]).column("source_uri").to_pylist()
    assert all(u.endswith(".txt") for u in uris) and result.new_documents == 2
