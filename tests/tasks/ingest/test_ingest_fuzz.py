"""Fuzzing ingest: a few hundred generated malformed files, and generated hostile names and
bytes; no crash, every file accounted for, every stored string valid UTF-8."""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.datasets import Store
from tasks.formats.readers import FORMATS
from tasks.ingest.stage import ingest
from tests.sample_files import make_docx, make_pdf, make_zip_bomb

WORDS = ["budget", "library", "meeting", "visits", "committee", "report"]
WORDS += ["naïve", "café", "会议", "図書館", "—", "“quoted”"]


def _prose(rng: random.Random, n: int, ascii_only: bool = False) -> str:
    words = [w for w in WORDS if w.isascii()] if ascii_only else WORDS
    return " ".join(rng.choice(words) for _ in range(n))


def _flip(rng: random.Random, data: bytes, n: int) -> bytes:
    out = bytearray(data)
    for _ in range(n):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def malformed_files(rng: random.Random) -> dict[str, bytes]:
    """About 300 damaged, hostile or odd inputs (and a few good ones among them)."""
    pdf = make_pdf([_prose(rng, 40, ascii_only=True), _prose(rng, 30, ascii_only=True)], title="Fuzz")
    docx = make_docx([_prose(rng, 30), _prose(rng, 20)], title="Fuzz")
    makers: list[tuple[str, int, Callable[[int], bytes]]] = [
        ("truncated.pdf", 40, lambda i: _cut(rng, pdf)),
        ("flipped.pdf", 30, lambda i: _flip(rng, pdf, 1 + i % 20)),
        ("truncated.docx", 25, lambda i: _cut(rng, docx)),
        ("flipped.docx", 20, lambda i: _flip(rng, docx, 1 + i % 10)),
        ("bomb.docx", 2, lambda i: make_zip_bomb(size=(4 + i) * 1024 * 1024)),
        ("random.txt", 25, lambda i: rng.randbytes(rng.randrange(1, 5000))),
        ("random.md", 15, lambda i: rng.randbytes(rng.randrange(1, 5000))),
        ("random.html", 15, lambda i: rng.randbytes(rng.randrange(1, 5000))),
        ("random.jsonl", 10, lambda i: rng.randbytes(rng.randrange(1, 5000))),
        ("random.parquet", 5, lambda i: rng.randbytes(rng.randrange(1, 5000))),
        ("bad-utf8.txt", 30, lambda i: _flip(rng, _prose(rng, 200).encode("utf-8"), 1 + i % 5)),
        ("huge-line.txt", 3, lambda i: ("word" * 250_000 + "\n").encode()),
        ("deep.html", 12, lambda i: b"<div><span>" * (1000 * (i + 1)) + b"x" + b"</span></div>" * (1000 * i)),
        (
            "deep.jsonl",
            8,
            lambda i: ("[" * (500 * (i + 1))).encode() + b"\n" + b'{"text": "ok ' + bytes([48 + i]) + b'"}',
        ),
        ("broken.jsonl", 15, lambda i: _cut(rng, json.dumps({"id": i, "text": _prose(rng, 20)}).encode())),
        ("crlf.txt", 10, lambda i: _prose(rng, 30).replace(" ", "\r\n", 3).encode("cp1252", "replace")),
        ("utf16.txt", 8, lambda i: _cut(rng, "\ufeff".encode("utf-16-le") + _prose(rng, 20).encode("utf-16-le"))),
        ("empty.md", 5, lambda i: b" \r\n\t" * i),
        ("nul.txt", 5, lambda i: b"text\x00" * (i + 1)),
        ("dup.txt", 10, lambda i: b"The same text in many files."),
        ("odd.bin", 7, lambda i: rng.randbytes(100)),
    ]
    files: dict[str, bytes] = {}
    for name, count, make in makers:
        stem, suffix = name.rsplit(".", 1)
        for i in range(count):
            files[f"{stem}-{i:03d}.{suffix}"] = make(i)
    return files


def test_a_few_hundred_malformed_files_crash_nothing_and_all_are_accounted_for(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = malformed_files(random.Random(7))
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    store = Store(str(tmp_path / "data"))
    result = ingest(store, [str(inbox)], "fuzz")
    assert result.files == len(files) >= 300
    states = {r["source_uri"]: r for r in store.read("inbox_files").to_pylist()}
    rejects = store.read("rejects").to_pylist()
    rejected = {(r["source_uri"], r["reason"]) for r in rejects}
    documents = set(store.read("documents", columns=["doc_id"]).column("doc_id").to_pylist())
    for name in files:
        state = states[(inbox / name).as_uri()]  # every file was seen and remembered
        doc_ids = json.loads(state["doc_ids"])
        if state["reason"]:
            assert (state["source_uri"], state["reason"]) in rejected and not doc_ids
        elif doc_ids:
            assert set(doc_ids) <= documents
        else:  # a record file none of whose records could be read
            assert any(r["source_uri"].startswith(state["source_uri"] + "#") for r in rejects)
    reasons = Counter(r["reason"] for r in rejects)
    assert {"corrupt", "binary", "undecodable", "archive-bomb", "bad-record", "empty", "unsupported-format"} <= set(
        reasons
    )
    whole = Counter(s["reason"] for s in states.values() if s["reason"])
    readable = sum(1 for s in states.values() if json.loads(s["doc_ids"]))
    print(
        f"\nfuzz: {len(files)} files tried; {readable} gave documents ({len(documents)} distinct texts);"
        f" {sum(whole.values())} rejected whole, by reason {dict(sorted(whole.items()))};"
        f" {len(files) - readable - sum(whole.values())} record files with no good record;"
        f" reject rows by reason {dict(sorted(reasons.items()))}"
    )
    again = ingest(store, [str(inbox)], "fuzz-again")
    assert again.files_unchanged == len(files) and again.rejects_new == 0 and again.new_documents == 0


NAME_MAX = 255  # bytes in one file name (Linux)
SUFFIXES = [*sorted(FORMATS), ".bin", ""]
name_bytes = st.one_of(
    st.binary(min_size=1, max_size=40),  # random bytes: mostly not UTF-8
    st.text(min_size=1, max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"a\nb", "x\u202etxt.exe".encode(), b"caf\xe9", b"sp ace#%3F?*[", b"\xff\xfe" * 100]),
    st.integers(1, 240).map(lambda n: b"L" * n),  # long, up to the limit with a suffix
)
json_ids = st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda v: st.lists(v, max_size=3))
record_lines = st.lists(st.tuples(json_ids, st.text(min_size=1)), max_size=5).map(
    lambda rows: "\n".join(json.dumps({"id": i, "text": t}) for i, t in rows).encode("utf-8", "surrogatepass")
)
contents = st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")))
contents = contents | record_lines


def _file_name(raw: bytes, suffix: str) -> bytes:
    name = raw.replace(b"/", b"_").replace(b"\x00", b"_").lstrip(b".") or b"x"  # hidden names are never read
    return name[: NAME_MAX - len(suffix)] + suffix.encode()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(name_bytes, st.sampled_from(SUFFIXES), contents), min_size=1, max_size=8))
def test_any_names_and_bytes_end_as_documents_or_rejects(files: list[tuple[bytes, str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = os.path.join(os.fsencode(tmp), b"inbox")
        os.mkdir(inbox)
        written = {}
        for raw, suffix, data in files:
            name = _file_name(raw, suffix)
            with open(os.path.join(inbox, name), "wb") as out:
                out.write(data)
            written[Path(os.fsdecode(os.path.join(inbox, name))).as_uri()] = data
        store = Store(os.path.join(tmp, "data"))
        ingest(store, [os.fsdecode(inbox)], "fuzz")  # never raises
        states = {s["source_uri"]: s for s in store.read("inbox_files").to_pylist()}
        rejects = store.read("rejects").to_pylist()
        for uri in written:  # each file: documents, a reject of its own, or rejects of its records
            state = states.get(uri)
            accounted = any(r["source_uri"] == uri or r["source_uri"].startswith(uri + "#") for r in rejects)
            assert accounted or (state is not None and json.loads(state["doc_ids"])), uri
        for table in ("documents", "rejects", "inbox_files"):
            for row in store.read(table).to_pylist():
                assert row["source_uri"].isascii() and row["source_uri"].isprintable()  # no newline, no U+202E
                for value in row.values():
                    if isinstance(value, str):
                        value.encode("utf-8")  # valid UTF-8: no lone surrogate
