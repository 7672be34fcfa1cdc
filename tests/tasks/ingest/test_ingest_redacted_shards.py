"""Redaction in the sharded ingest: a cut record file read by several shards (in any order) stores
what one shard reading it whole stores, URI placeholders included, and no original value."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.datasets import Store
from tasks.formats.limits import Limits
from tasks.ingest import catalog, ingest, ranges
from tasks.ingest.stage import IngestResult, empty_result, finish_ingest, ingest_shard
from tasks.ingest.units import plan_ingest
from tasks.redact import RedactSettings
from tests.tasks.redact.corpus import leaks

VOLATILE = {"run_id", "ingested_at", "rejected_at", "seen_at", "redacted_at"}
FOLDER = "dana.w@example.com"  # in every URI of the file: numbered first
ANN, BOB = "ann.lee@example.com", "bob.ma@example.org"
PHONE = "+1 415 555 0132"
VALUES = [FOLDER, ANN, BOB, PHONE]


def make_box(box: Path) -> None:
    """A JSONL file (cut into several ranges below) whose record ids hold addresses: ANN names a
    record in the first range and another in the last, with BOB first seen in between; texts
    quote both and a phone; a bad line in a later range; a byte-order mark; a Parquet file of
    small row groups named alike; a text file named by an address."""
    folder = box / FOLDER
    folder.mkdir(parents=True)
    ids = {0: f"{ANN}/1", 25: f"{BOB}/1", 50: f"{ANN}/2"}
    lines = []
    for i in range(60):
        record = {"text": f"Note {i}: write to {ANN if i % 2 else BOB} or call {PHONE}."}
        if i in ids:
            record["id"] = ids[i]
        lines.append(json.dumps(record))
    lines[40] = "{not json " + ANN
    (folder / "people.jsonl").write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    ids = {0: f"{ANN}/p1", 20: f"{BOB}/p1", 35: f"{ANN}/p2"}
    rows = {"id": [ids.get(i, f"p{i}") for i in range(40)], "text": [f"Row {i} from {ANN}." for i in range(40)]}
    pq.write_table(pa.table(rows), box / "rows.parquet", row_group_size=4)
    (box / f"{BOB}.txt").write_text(f"Mail {BOB} today.", encoding="utf-8")


def tables(store: Store) -> dict[str, Counter[tuple]]:
    out = {}
    for table in ("documents", "redactions", "rejects", "inbox_files"):
        rows = store.read(table).to_pylist()
        out[table] = Counter(tuple(sorted((k, v) for k, v in r.items() if k not in VOLATILE)) for r in rows)
    return out


def sharded_reversed(
    store: Store, box: Path, run_id: str, redaction: RedactSettings | None, shard_files: int = 1
) -> IngestResult:
    """Shards of `shard_files` files or ranges, run last shard first: a range is read before the
    ranges of the file that come before it."""
    plan = plan_ingest(store, [str(box)], Limits(), shard_files=shard_files, redaction=redaction)
    total = empty_result()
    for shard in reversed(plan.shards):
        total = ingest_shard(store, shard, run_id, Limits(), redaction=redaction) + total
    return total + finish_ingest(store, plan, total, run_id, Limits(), redaction)


@pytest.mark.parametrize("shard_files", [1, 2])  # 2: two ranges of the file in one shard, in turn
def test_a_redacted_sharded_ingest_stores_what_one_shard_does_and_no_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shard_files: int
) -> None:
    box = tmp_path / "box"
    make_box(box)
    settings = RedactSettings()
    one, many = Store(str(tmp_path / "one")), Store(str(tmp_path / "many"))
    expected = ingest(one, [str(box)], "run1", redaction=settings)  # 16 MiB ranges: read whole
    monkeypatch.setattr(ranges, "RANGE_BYTES", 700)
    monkeypatch.setattr(ranges, "RANGE_RECORDS", 8)
    monkeypatch.setattr(ranges, "PARQUET_FOOTER_BYTES", 0)
    monkeypatch.setattr(ranges, "_READ_CHUNK", 300)  # the records before a range, in several pieces
    plan = plan_ingest(many, [str(box)], Limits(), shard_files=shard_files, redaction=settings)
    units = [u for s in plan.shards for u in s.units]
    assert len(plan.shards) == -(-len(units) // shard_files)
    for name, where in (("people.jsonl", (0, 25, 50)), ("rows.parquet", (0, 20, 35))):
        starts = [u.records.first_record for u in units if u.records and u.item.path.endswith(name)]
        assert len(starts) >= 4  # the records of ANN, BOB and ANN again lie in three ranges
        assert len({sum(first <= n for first in starts) for n in where}) == 3
    got = sharded_reversed(many, box, "run1", settings, shard_files)
    assert got.doc_ids == expected.doc_ids and got.new_documents == expected.new_documents == 100
    assert got.rejects_by_reason == expected.rejects_by_reason == {"bad-record": 1}
    assert tables(many) == tables(one)

    # The numbering of the whole file: the folder first, then the ids in the order of the records.
    uris = {unquote(r["source_uri"]).split("/box/", 1)[1] for r in many.read("documents").to_pylist()}
    assert {u for u in uris if "#[" in u} == {
        "[EMAIL_1]/people.jsonl#[EMAIL_2]/1",
        "[EMAIL_1]/people.jsonl#[EMAIL_3]/1",
        "[EMAIL_1]/people.jsonl#[EMAIL_2]/2",
        "rows.parquet#[EMAIL_1]/p1",
        "rows.parquet#[EMAIL_2]/p1",
        "rows.parquet#[EMAIL_1]/p2",
    }
    assert all(u.startswith(("[EMAIL_1]/people.jsonl#", "rows.parquet#")) for u in uris if u != "[EMAIL_1].txt")
    (reject,) = many.read("rejects").to_pylist()
    assert unquote(reject["source_uri"]).endswith("[EMAIL_1]/people.jsonl#line-41")
    (inbox_row,) = [r for r in many.read("inbox_files").to_pylist() if "people" in r["source_uri"]]
    assert (
        unquote(inbox_row["source_uri"]).endswith("/box/[EMAIL_1]/people.jsonl") and "redact=" in inbox_row["settings"]
    )
    assert len(json.loads(inbox_row["doc_ids"])) == 59
    rows = many.read("redactions").to_pylist()
    assert {r["doc_id"] for r in rows} == set(got.doc_ids) and {r["type"] for r in rows} == {"email", "phone"}

    sharded_reversed(Store(str(tmp_path / "plain")), box, "run1", None)  # the search sees them there
    assert set(leaks([tmp_path / "plain"], VALUES)) == set(VALUES)
    assert leaks([tmp_path / "one", tmp_path / "many"], VALUES) == {}

    again = sharded_reversed(many, box, "run2", settings)  # unchanged, found under its redacted name
    assert again.files_unchanged == 3 and again.new_documents == 0 and again.doc_ids == expected.doc_ids
    plain = plan_ingest(many, [str(box)], Limits(), shard_files=1)  # without --redact: read again, cut
    assert sum(1 for s in plain.shards for u in s.units if u.records) == sum(1 for u in units if u.records)


def test_a_batch_commits_the_redactions_of_its_documents_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = tmp_path / "box"
    make_box(box)
    calls: list[tuple[list, list]] = []
    real = catalog.commit_batch

    def recording(
        store: Store, documents: list, redactions: list, rejects: list, inbox: list, name: str, *, run_id: str
    ) -> dict[str, int]:
        calls.append((documents, redactions))
        return real(store, documents, redactions, rejects, inbox, name, run_id=run_id)

    monkeypatch.setattr(catalog, "commit_batch", recording)
    store = Store(str(tmp_path / "data"))
    ingest(store, [str(box)], "run1", redaction=RedactSettings())
    ingest(store, [str(box)], "run2", redaction=RedactSettings())  # nothing new: no redaction again
    assert sum(len(d) for d, _ in calls) == 100
    for documents, redactions in calls:
        assert {r["doc_id"] for r in redactions} == {d["doc_id"] for d in documents}
    assert len(store.read("redactions")) == sum(len(r) for _, r in calls)


def test_finish_ingest_scrubs_the_rejects_of_missing_and_bad_inputs(tmp_path: Path) -> None:
    missing = str(tmp_path / "box" / ANN / "*.jsonl")
    store = Store(str(tmp_path / "data"))
    result = ingest(store, [missing], "run1", redaction=RedactSettings())
    assert result.rejects_by_reason == {"missing-input": 1}
    (reject,) = store.read("rejects").to_pylist()
    assert unquote(reject["source_uri"]).endswith("/box/[EMAIL_1]/*.jsonl")
    assert leaks([tmp_path / "data"], [ANN]) == {}
