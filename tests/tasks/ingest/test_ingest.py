"""Ingest: formats, record files, deduplication, rejects, and the data directory left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from storage.datasets import Store
from tasks.ingest.stage import Limits, doc_id_for, ingest
from tasks.tables import load_texts


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


def test_unchanged_files_are_skipped_changed_ones_read_again(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    first = ingest(store, [str(inbox)], "run1")
    assert first.files == 8 and first.files_unchanged == 0
    plain = inbox / "plain.txt"
    stat = plain.stat()
    # Same size and mtime: skipped on those alone, so even a sneaky same-size edit goes unread.
    plain.write_text("First line of a plain file.\n\nSecond paragraph!", encoding="utf-8")
    os.utime(plain, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = ingest(store, [str(inbox)], "run2")
    assert second.files_unchanged == 8 and second.doc_ids == first.doc_ids and second.new_documents == 0
    assert store.read("inbox_files").num_rows == 8  # nothing to remember anew
    # Touched, not changed: hashed, not parsed; the new mtime is remembered.
    os.utime(inbox / "latin1.txt")
    third = ingest(store, [str(inbox)], "run3")
    assert third.files_unchanged == 8 and store.read("inbox_files").num_rows == 9
    # Changed: a new document; the old one stays stored.
    (inbox / "nested" / "notes.md").write_text("# New Title\n\nRewritten body.", encoding="utf-8")
    fourth = ingest(store, [str(inbox)], "run4")
    assert fourth.files_unchanged == 7 and fourth.new_documents == 1
    new_id = doc_id_for("# New Title\n\nRewritten body.")
    titles = dict(zip(*store.read("documents", columns=["doc_id", "title"]).to_pydict().values(), strict=True))
    assert titles[new_id] == "New Title" and "The Real Title" in titles.values()
    assert new_id in fourth.doc_ids and len(fourth.doc_ids) == len(first.doc_ids)


def test_identical_texts_are_one_document_and_every_file_is_accounted_for(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    ingest(store, [str(inbox)], "run1")
    states = {r["source_uri"].rsplit("/", 1)[-1]: r for r in store.read("inbox_files").to_pylist()}
    assert len(states) == 8
    assert states["plain.txt"]["doc_ids"] == states["copy.txt"]["doc_ids"] != "[]"
    assert states["image.png"]["reason"] == "unsupported-format" and states["empty.txt"]["reason"] == "empty"


def test_rejects_are_stored_once_but_counted_every_run(inbox: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"))
    first = ingest(store, [str(inbox), str(tmp_path / "missing.txt")], "run1")
    second = ingest(store, [str(inbox), str(tmp_path / "missing.txt")], "run2")
    expected = {"bad-record": 2, "empty": 1, "missing-input": 1, "unsupported-format": 1}
    assert first.rejects_by_reason == expected and first.rejects_new == 5
    assert second.rejects_by_reason == expected and second.files_unchanged == 8  # counted, though not read
    assert second.rejects_new == 0 and store.read("rejects").num_rows == 5


def test_limits_reject_and_a_raised_limit_reads_again(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "big.txt").write_text("word " * 1000, encoding="utf-8")
    store = Store(str(tmp_path / "data"))
    small = ingest(store, [str(box)], "run1", Limits(max_document_bytes=1000))
    assert small.rejects_by_reason == {"too-large": 1} and small.doc_ids == []
    large = ingest(store, [str(box)], "run2", Limits(max_document_bytes=10_000))
    assert large.rejects == 0 and large.new_documents == 1


def test_symlink_loops_dangling_links_and_fifos_are_rejects(tmp_path: Path) -> None:
    box = tmp_path / "box"
    (box / "sub").mkdir(parents=True)
    (box / "sub" / "real.txt").write_text("A real document.", encoding="utf-8")
    (box / "sub" / "up").symlink_to(box)  # a directory cycle
    (box / "self.txt").symlink_to(box / "self.txt")  # a link to itself
    (box / "gone.txt").symlink_to(box / "nowhere.txt")
    os.mkfifo(box / "pipe.txt")  # reading it would block forever
    store = Store(str(tmp_path / "data"))
    result = ingest(store, [str(box), str(box / "self.txt")], "run1")  # a loop named directly too: once
    assert result.new_documents == 1
    assert result.rejects_by_reason == {"not-a-file": 1, "symlink-loop": 2, "unreadable": 1}
    rejects = {r["source_uri"].split("/box/")[1]: r["reason"] for r in store.read("rejects").to_pylist()}
    assert rejects == {
        "sub/up": "symlink-loop",
        "self.txt": "symlink-loop",
        "gone.txt": "unreadable",
        "pipe.txt": "not-a-file",
    }


def _write_bytes_name(directory: Path, name: bytes, data: bytes) -> None:
    """A file whose name is raw bytes (on Linux a name need not be UTF-8)."""
    with open(os.path.join(os.fsencode(directory), name), "wb") as out:
        out.write(data)


def test_names_that_are_not_utf8_are_bad_name_rejects_and_the_run_goes_on(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "good.txt").write_text("A good document.", encoding="utf-8")
    _write_bytes_name(box, b"caf\xe9.txt", b"Un caf\xc3\xa9.")
    os.mkdir(os.path.join(os.fsencode(box), b"dir\xff"))  # a folder: rejected once, not walked
    _write_bytes_name(box / os.fsdecode(b"dir\xff"), b"inside.txt", b"Inside a bad folder.")
    store = Store(str(tmp_path / "data"))
    missing = str(box / os.fsdecode(b"gone\xe9.txt"))  # a missing input named in Latin-1
    result = ingest(store, [str(box), missing, "nul\x00.txt"], "run1")
    assert result.new_documents == 1
    assert result.rejects_by_reason == {"bad-name": 3, "missing-input": 1}
    rejects = {r["source_uri"].rsplit("/", 1)[-1]: (r["reason"], r["error"]) for r in store.read("rejects").to_pylist()}
    assert rejects["caf%E9.txt"][0] == "bad-name" and "not valid UTF-8" in rejects["caf%E9.txt"][1]
    assert rejects["dir%FF"][0] == "bad-name" and rejects["gone%E9.txt"][0] == "missing-input"
    assert rejects["nul%00.txt"] == ("bad-name", "the name holds a NUL byte")
    again = ingest(store, [str(box), missing, "nul\x00.txt"], "run2")
    assert again.rejects_new == 0 and again.rejects_by_reason == result.rejects_by_reason


def test_any_error_in_one_file_is_a_reject_and_the_next_run_tries_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.ingest.stage as ingest_module

    box = tmp_path / "box"
    box.mkdir()
    for name in ("bug.txt", "memory.txt", "good.txt"):
        (box / name).write_text(f"The text of {name}.", encoding="utf-8")
    read = ingest_module.read_documents
    failures = {"bug.txt": ValueError("deep in a parser\nsecond line"), "memory.txt": MemoryError()}

    def failing(uri: str, *args):  # type: ignore[no-untyped-def]
        for name, error in failures.items():
            if uri.endswith(name):
                raise error
        return read(uri, *args)

    monkeypatch.setattr(ingest_module, "read_documents", failing)  # a reader bug, a file too big for memory
    store = Store(str(tmp_path / "data"))
    first = ingest(store, [str(box)], "run1")
    assert first.new_documents == 1 and first.rejects_by_reason == {"reader-error": 2}
    errors = {r["source_uri"].rsplit("/", 1)[-1]: r["error"] for r in store.read("rejects").to_pylist()}
    assert errors == {"bug.txt": "ValueError: deep in a parser", "memory.txt": "MemoryError: (no message)"}
    monkeypatch.setattr(ingest_module, "read_documents", read)  # the bug fixed, the memory there
    second = ingest(store, [str(box)], "run2")
    assert second.new_documents == 2 and second.rejects == 0 and second.files_unchanged == 1


def test_record_ids_reach_the_store_encoded_and_lone_surrogates_never_do(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    lines = [
        '{"id": "a\\nb\\u202e", "text": "Odd id.", "note": "bad \\udc00 here"}',
        '{"id": "a\\nb\\u202e", "text": "Same id again."}',
        '{"id": null, "text": "No id."}',
        '{"id": "s", "text": "lone \\ud800 surrogate"}',
        '{"id": "t", "title": "x\\udfff", "text": "Surrogate title."}',
    ]
    (box / "r.jsonl").write_text("\n".join(lines), encoding="utf-8")
    store = Store(str(tmp_path / "data"))
    result = ingest(store, [str(box)], "run1")
    assert result.rejects_by_reason == {"duplicate-id": 1, "undecodable": 1}
    docs = {d["source_uri"].rsplit("#", 1)[1]: d for d in store.read("documents").to_pylist()}
    assert set(docs) == {"a%0Ab%E2%80%AE", "2", "t"}
    assert json.loads(docs["a%0Ab%E2%80%AE"]["metadata"])["note"] == "bad \udc00 here"  # the same JSON value
    assert docs["t"]["title"] == "x%ED%BF%BF"
    rejects = {r["source_uri"].rsplit("#", 1)[1]: r["reason"] for r in store.read("rejects").to_pylist()}
    assert rejects == {"line-2": "duplicate-id", "s": "undecodable"}


def test_an_input_argument_that_is_not_utf8_is_one_line_at_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    name = str(tmp_path / os.fsdecode(b"caf\xe9.txt"))  # as Python sees argv bytes
    assert main(["run", name, "--data-dir", str(tmp_path / "d"), "--no-classify", "--no-summarize"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("longdoc: error: INPUT ") and "caf%E9.txt" in err and "\n" not in err
