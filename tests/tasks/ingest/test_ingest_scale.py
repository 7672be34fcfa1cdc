"""Ingest at scale: shards and record ranges give the tables of one shard, batches bound what is
held, the store is asked about the candidates only, and a run killed between batches is mended."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.datasets import Store
from tasks.formats.limits import Limits
from tasks.ingest import catalog, ingest, ranges
from tasks.ingest.batch import BatchSize
from tasks.ingest.stage import IngestResult, empty_result, finish_ingest, ingest_shard
from tasks.ingest.units import plan_ingest

VOLATILE = {"run_id", "ingested_at", "rejected_at", "seen_at"}


def make_inbox(box: Path) -> None:
    """Text files, a JSONL file with a byte-order mark, bad lines, records without ids and texts
    repeated across files and ranges, and a Parquet file of many row groups."""
    box.mkdir()
    for i in range(6):
        (box / f"t{i}.txt").write_text(f"Text file {i % 4} says something.", encoding="utf-8")  # t4, t5 repeat
    lines = []
    for i in range(60):
        record: dict[str, Any] = {"text": f"Record text {i % 45}."}  # 15 repeats, across ranges
        if i % 3:
            record["id"] = f"r{i}"
        lines.append(json.dumps(record))
    lines[7], lines[31] = "{not json", json.dumps({"id": "x", "body": "no text"})
    lines.insert(20, "")
    (box / "records.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    rows = {"id": [f"p{i}" for i in range(40)], "text": [f"Parquet text {i % 30}." for i in range(40)]}
    rows["text"][5] = "Text file 1 says something."  # the same text as a text file
    pq.write_table(pa.table(rows), box / "rows.parquet", row_group_size=4)


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of a few hundred bytes and rows, so that a small file is cut into several."""
    monkeypatch.setattr(ranges, "RANGE_BYTES", 300)
    monkeypatch.setattr(ranges, "RANGE_RECORDS", 10)
    monkeypatch.setattr(ranges, "PARQUET_FOOTER_BYTES", 0)


def tables(store: Store) -> dict[str, Counter[tuple]]:
    out = {}
    for table in ("documents", "rejects", "inbox_files"):
        rows = store.read(table).to_pylist()
        out[table] = Counter(tuple(sorted((k, v) for k, v in r.items() if k not in VOLATILE)) for r in rows)
    return out


def sharded(store: Store, box: Path, run_id: str, size: BatchSize | None = None) -> IngestResult:
    plan = plan_ingest(store, [str(box)], Limits(), shard_files=2)
    total = empty_result()
    for shard in plan.shards:
        total = total + ingest_shard(store, shard, run_id, Limits(), size=size)
    return total + finish_ingest(store, plan, total, run_id, Limits())


def test_shards_and_record_ranges_store_what_one_shard_does(tmp_path: Path, small_ranges: None) -> None:
    box = tmp_path / "box"
    make_inbox(box)
    one, many = Store(str(tmp_path / "one")), Store(str(tmp_path / "many"))
    with pytest.MonkeyPatch.context() as whole:  # nothing cut: every file read whole, in one shard
        whole.setattr(ranges, "RANGE_BYTES", 10**9)
        whole.setattr(ranges, "PARQUET_FOOTER_BYTES", 10**9)
        single = plan_ingest(one, [str(box)], Limits())
        assert len(single.shards) == 1
        expected = ingest(one, [str(box)], "run1")
    plan = plan_ingest(many, [str(box)], Limits(), shard_files=2)
    cut = Counter(u.item.path.rsplit("/", 1)[1] for s in plan.shards for u in s.units if u.records)
    assert cut["records.jsonl"] >= 3 and cut["rows.parquet"] >= 3 and len(plan.shards) >= 6
    got = sharded(many, box, "run1", BatchSize(documents=4))
    assert got.doc_ids == expected.doc_ids and got.new_documents == expected.new_documents
    assert got.rejects_by_reason == expected.rejects_by_reason == {"bad-record": 2}
    assert (got.files, got.rejects_new) == (expected.files, expected.rejects_new) == (8, 2)
    assert tables(many) == tables(one)
    uris = [r["source_uri"].rsplit("/", 1)[1] for r in one.read("rejects").to_pylist()]
    assert sorted(uris) == ["records.jsonl#line-33", "records.jsonl#line-8"]  # numbers of the whole file
    again = sharded(many, box, "run2")  # unchanged: nothing read, the same documents
    assert again.files_unchanged == 8 and again.new_documents == 0 and again.doc_ids == expected.doc_ids
    assert again.rejects_by_reason == {"bad-record": 2}


def test_the_same_text_in_two_shards_is_one_document(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (box / name).write_text("One text in every file." if name in ("a.txt", "d.txt") else name, encoding="utf-8")
    store = Store(str(tmp_path / "data"))
    result = sharded(store, box, "run1")
    docs = store.read("documents").to_pylist()
    assert len(docs) == 3 and result.new_documents == 3 and len(result.doc_ids) == 3
    assert [d["source_uri"].rsplit("/", 1)[1] for d in docs if d["text"].startswith("One")] == ["a.txt"]


def test_an_id_repeated_in_another_range_is_the_duplicate_id_reject_of_a_whole_read(
    tmp_path: Path, small_ranges: None
) -> None:
    """The same record id in two record ranges that different shards read: the first record
    keeps the id and the later ones are `duplicate-id` rejects, as in a whole-file read, in
    whichever order the shards run."""
    box = tmp_path / "box"
    box.mkdir()
    lines = [json.dumps({"id": f"r{i}", "text": f"Record text number {i}."}) for i in range(40)]
    lines[30] = json.dumps({"id": "r2", "text": "A later record that reuses an earlier id."})
    lines[35] = json.dumps({"id": "r2", "text": "Record text number 2."})  # the same id and text
    (box / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = {"id": [f"p{i}" for i in range(40)], "text": [f"Parquet row {i}." for i in range(40)]}
    rows["id"][33] = "p1"
    pq.write_table(pa.table(rows), box / "rows.parquet", row_group_size=4)
    one = Store(str(tmp_path / "one"))
    with pytest.MonkeyPatch.context() as whole:
        whole.setattr(ranges, "RANGE_BYTES", 10**9)
        whole.setattr(ranges, "PARQUET_FOOTER_BYTES", 10**9)
        expected = ingest(one, [str(box)], "run1")
    assert expected.rejects_by_reason == {"duplicate-id": 3}
    for order in (1, -1):
        store = Store(str(tmp_path / f"cut{order}"))
        plan = plan_ingest(store, [str(box)], Limits(), shard_files=1)
        taken = [u.taken for s in plan.shards for u in s.units if u.taken]
        assert len(plan.shards) >= 8 and len(taken) == 3  # the later ids are in ranges of their own
        total = empty_result()
        for shard in plan.shards[::order]:
            total = total + ingest_shard(store, shard, "run1", Limits())
        total = total + finish_ingest(store, plan, total, "run1", Limits())
        assert sorted(total.doc_ids) == sorted(expected.doc_ids) and total.new_documents == expected.new_documents
        assert total.rejects_by_reason == {"duplicate-id": 3}
        assert tables(store) == tables(one)


class Recorder:
    """The real adapter, with every call's arguments written down."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, list[Any]] = {}
        for name in ("known_doc_ids", "latest_states", "known_rejects", "record_rejects", "commit_batch"):
            monkeypatch.setattr(catalog, name, self._wrap(name, getattr(catalog, name)))

    def _wrap(self, name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.setdefault(name, []).append(args[1:])
            return real(*args, **kwargs)

        return call


def test_each_batch_is_committed_with_at_most_the_batch_size_and_inbox_rows_after_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "many.jsonl").write_text("\n".join(json.dumps({"text": f"Record {i}."}) for i in range(23)))
    for i in range(5):
        (box / f"f{i}.txt").write_text(f"File {i}.", encoding="utf-8")
    recorder = Recorder(monkeypatch)
    store = Store(str(tmp_path / "data"))
    plan = plan_ingest(store, [str(box)], Limits())
    result = ingest_shard(store, plan.shards[0], "run1", Limits(), size=BatchSize(documents=5))
    commits = recorder.calls["commit_batch"]
    assert result.new_documents == 28 and len(commits) >= 6
    assert all(len(documents) <= 5 and redactions == [] for documents, redactions, _, _, _ in commits)
    committed_at: dict[str, int] = {}
    for n, (documents, _, _, inbox_rows, _) in enumerate(commits):
        committed_at |= {d["doc_id"]: n for d in documents}
        for row in inbox_rows:  # every document of the file committed already, or now
            assert all(committed_at[d] <= n for d in json.loads(row["doc_ids"])), row["source_uri"]
    assert sum(len(rows) for _, _, _, rows, _ in commits) == 6


def test_lookups_name_the_candidates_only_and_no_table_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "big.jsonl").write_text("\n".join(json.dumps({"text": f"Stored {i}.", "id": i}) for i in range(3000)))
    (old / "bad.jsonl").write_text("{oops\n" * 50)
    store = Store(str(tmp_path / "data"))
    ingest(store, [str(old)], "run1")
    assert store.read("documents").num_rows == 3000 and store.read("rejects").num_rows == 50
    new.mkdir()
    for i in range(4):
        (new / f"n{i}.txt").write_text(f"New {i}." if i else "Stored 7.", encoding="utf-8")  # one text known
    (new / "x.bin").write_bytes(b"binary")

    reads: list[tuple[str, bool]] = []
    real_read = Store.read

    def read(self: Store, table: str, columns: Any = None, where: Any = None) -> pa.Table:
        reads.append((table, where is not None))
        return real_read(self, table, columns, where)

    monkeypatch.setattr(Store, "read", read)
    recorder = Recorder(monkeypatch)
    result = ingest(store, [str(new)], "run2")
    assert result.new_documents == 3 and result.known_documents == 1
    assert reads and all(filtered for _, filtered in reads), reads  # never a whole table
    new_uris = {(new / n).as_uri() for n in ("n0.txt", "n1.txt", "n2.txt", "n3.txt", "x.bin")}
    asked_docs = {d for (ids,) in recorder.calls["known_doc_ids"] for d in ids}
    assert asked_docs == set(result.doc_ids)  # the batch's 4 documents, not the 3000 stored
    assert {u for (uris,) in recorder.calls["latest_states"] for u in uris} == new_uris
    assert {u for (uris,) in recorder.calls["known_rejects"] for u in uris} == {(new / "x.bin").as_uri()}
    assert "record_rejects" not in recorder.calls  # no record file seen unchanged


class Killed(BaseException):
    """Not an Exception: nothing in ingest catches it, as nothing catches SIGKILL."""


def failing_commit(after: int, half: bool) -> Any:
    """The real commit, but the `after`-th one dies as it begins (or, `half`, after a commit of
    its documents alone: a lake commits a batch whole, but a store that did not must be mended
    too)."""
    real = catalog.commit_batch
    count = {"n": 0}

    def commit(
        store: Store, documents: list, redactions: list, rejects: list, inbox_rows: list, name: str, *, run_id: str
    ) -> dict[str, int]:
        count["n"] += 1
        if count["n"] == after:
            if half:
                store.add("documents", documents, run_id)
            raise Killed
        return real(store, documents, redactions, rejects, inbox_rows, name, run_id=run_id)

    return commit


@pytest.mark.parametrize("half", [False, True])
def test_a_run_killed_between_or_inside_commits_is_mended_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, half: bool
) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "r.jsonl").write_text("\n".join(json.dumps({"text": f"Record {i}."}) for i in range(30)) + "\n{bad")
    for i in range(10):
        (box / f"f{i}.txt").write_text(f"File {i % 7}.", encoding="utf-8")
    clean, crashed = Store(str(tmp_path / "clean")), Store(str(tmp_path / "crashed"))
    expected = sharded(clean, box, "run1", BatchSize(documents=4))
    monkeypatch.setattr(catalog, "commit_batch", failing_commit(3, half))
    with pytest.raises(Killed):
        sharded(crashed, box, "run1", BatchSize(documents=4))
    monkeypatch.undo()
    mended = sharded(crashed, box, "run2", BatchSize(documents=4))
    assert mended.doc_ids == expected.doc_ids and 0 < mended.new_documents < expected.new_documents
    assert tables(crashed) == tables(clean)  # nothing twice, nothing missing
