"""Completion recorded where the data is: a shard stage is skipped only when the data directory's
own marker says it is done and every part file the marker names is still there. A copied, a
partly deleted and an old restored data directory each get exactly the missing work done,
nothing twice (rows and duplicates counted with DuckDB, inference counted in the run's counts)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.params import ProcessParams
from storage import completion, warehouse
from storage.datasets import Store
from storage.schema import KEYS
from tasks.run import steps
from tasks.run.pipeline import STAGES, run_shard
from tasks.run.shards import Shard

TABLES = ("segments", "segment_labels", "segment_summaries", "document_results")


def write_inbox(inbox: Path, names: range) -> None:
    inbox.mkdir(exist_ok=True)
    for n in names:
        text = " ".join(f"Document {n} sentence {i}: the committee met about budget item {i}." for i in range(12))
        (inbox / f"doc{n:02d}.txt").write_text(text, encoding="utf-8")


def params(data: Path, inbox: Path, classifier: str, summarizer: str | None) -> ProcessParams:
    """The options of every run here; the Prefect test passes the same ones on the command line."""
    return ProcessParams(
        inputs=[str(inbox)],
        data_dir=str(data),
        classifier=classifier,
        summarizer=summarizer or "default",
        summarize=summarizer is not None,
        max_tokens=300,
        overlap_tokens=12,
        max_new_tokens=4,
        device="cpu",
        shard_documents=2,
    )


def run(options: ProcessParams) -> tuple[Counter[str], list[Shard]]:
    """A whole run without Prefect, every shard through the pipeline the flow's task runs use."""
    plan, run_id, store = options.make_plan(), steps.new_run_id(), Store(options.data_dir)
    doc_ids = steps.step_ingest(store, options.inputs, run_id).doc_ids
    shards = steps.step_shard(store, doc_ids, options.shard_documents)
    totals: Counter[str] = Counter()
    for shard in shards:
        for result in run_shard(store, plan, shard, run_id).stages():
            totals.update({k: v for k, v in result.counts().items() if isinstance(v, int) and k not in result.SETTINGS})
    return totals, shards


def table_counts(data: Path) -> dict[str, tuple[int, int]]:
    """(rows, distinct keys) per result table, read from the Parquet parts with DuckDB."""
    import duckdb

    counts = {}
    for table in TABLES:
        parts = sorted((data / table).glob("*.parquet"))
        if not parts:
            counts[table] = (0, 0)
            continue
        files = ", ".join(f"'{p}'" for p in parts)
        key = ", ".join(KEYS[table])
        row = duckdb.sql(f"SELECT count(*), count(DISTINCT ({key})) FROM read_parquet([{files}])").fetchone()
        assert row is not None
        counts[table] = (int(row[0]), int(row[1]))
    return counts


def no_duplicates(counts: dict[str, tuple[int, int]]) -> bool:
    return all(rows == distinct for rows, distinct in counts.values())


@pytest.fixture
def complete(tmp_path: Path, tiny_bert_classifier: str, tiny_llama: str) -> tuple[Path, Path, dict]:
    """A data directory after one full run over five documents (three shards)."""
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    write_inbox(inbox, range(5))
    totals, shards = run(params(data, inbox, tiny_bert_classifier, tiny_llama))
    assert len(shards) == 3 and totals["segments_classified"] > 5 and totals["segments_summarized"] > 5
    counts = table_counts(data)
    assert counts["document_results"] == (5, 5) and no_duplicates(counts)
    return inbox, data, counts


def test_a_copied_directory_does_what_the_copy_lacks(
    complete, tmp_path: Path, tiny_bert_classifier, tiny_llama
) -> None:
    inbox, data, counts = complete
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    totals, shards = run(params(copy, inbox, tiny_bert_classifier, tiny_llama))
    assert all(totals[f"{stage}_shards_skipped"] == len(shards) for stage in STAGES)  # all there: all skipped
    assert totals["segments_classified"] == totals["segments_summarized"] == 0
    for table in ("segment_labels", "document_results"):  # a copy taken before the results were made
        shutil.rmtree(copy / table)
    totals, _ = run(params(copy, inbox, tiny_bert_classifier, tiny_llama))
    assert totals["segments_classified"] == counts["segment_labels"][0]
    assert totals["document_results_new"] == 5
    assert totals["segments_summarized"] == totals["segments_new"] == 0
    assert totals["segment_shards_skipped"] == totals["summarize_shards_skipped"] == 3
    assert totals["classify_shards_skipped"] == totals["aggregate_shards_skipped"] == 0
    assert table_counts(copy) == counts


def test_a_partly_deleted_directory_redoes_exactly_the_missing_rows(complete, tiny_bert_classifier, tiny_llama) -> None:
    import pyarrow.parquet as pq

    inbox, data, counts = complete
    lost = Counter()
    for table in ("segments", "segment_labels", "document_results"):
        part = sorted((data / table).glob("*.parquet"))[-1]
        lost[table] = pq.read_metadata(part).num_rows
        part.unlink()
    totals, _ = run(params(data, inbox, tiny_bert_classifier, tiny_llama))
    assert totals["classifier_segments_new"] + totals["summarizer_segments_new"] == lost["segments"] > 0
    assert totals["segments_classified"] == lost["segment_labels"] > 0
    assert totals["document_results_new"] == lost["document_results"] > 0
    assert totals["segments_summarized"] == 0
    assert table_counts(data) == counts
    again, shards = run(params(data, inbox, tiny_bert_classifier, tiny_llama))  # the mended markers hold
    assert all(again[f"{stage}_shards_skipped"] == len(shards) for stage in STAGES)


def test_an_old_backup_gets_the_newer_inputs_done(tmp_path: Path, tiny_bert_classifier: str) -> None:
    data, backup, old, new = (tmp_path / d for d in ("data", "backup", "old", "all"))
    write_inbox(old, range(3))
    write_inbox(new, range(7))
    run(params(data, old, tiny_bert_classifier, None))
    shutil.copytree(data, backup)
    before = table_counts(data)
    run(params(data, new, tiny_bert_classifier, None))
    after = table_counts(data)
    shutil.rmtree(data)
    shutil.copytree(backup, data)  # the backup restored over the newer directory
    totals, _ = run(params(data, new, tiny_bert_classifier, None))
    assert totals["segments_classified"] == after["segment_labels"][0] - before["segment_labels"][0] > 0
    assert totals["document_results_new"] == 4
    assert table_counts(data) == after and no_duplicates(after)


def test_markers_name_their_parts_and_distrust_anything_else(tmp_path: Path) -> None:
    from tests.conftest import document_row

    store = Store(str(tmp_path))
    rows = [document_row(f"d{n}", f"text {n}") for n in range(3)]
    paths = [store.write_part("documents", rows[:2], "p1"), store.write_part("documents", rows[2:], "p2")]
    import pyarrow.compute as pc

    outputs = [("documents", pc.field("doc_id") == "d2"), ("segments", pc.field("doc_id") == "d2")]
    parts = completion.output_parts(store, outputs)
    assert parts == {"documents/p2.parquet": os.path.getsize(str(paths[1]))}  # only the part holding d2
    name = completion.marker_name("segment", "c0ffee", "abc123")
    assert not completion.is_done(store, name)
    completion.record(store, name, parts, {"stage": "segment"})
    assert completion.is_done(store, name)
    assert [p.name for p in (tmp_path / completion.MARKER_DIR).iterdir()] == [f"{name}.json"]  # no temporary left
    # Markers are no part of any table, nor of the warehouse.
    assert store.read("documents").num_rows == 3 and store.parts("segments") == []
    warehouse.sync(store)
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(3,)]

    marker = tmp_path / completion.MARKER_DIR / f"{name}.json"
    body = json.loads(marker.read_text())
    hostile: list[Any] = [
        {"documents/p2.parquet": body["parts"]["documents/p2.parquet"] + 1},  # the size changed
        {"../../etc/passwd": 1},
        {"documents/../documents/p2.parquet": 10},
        {"documents/.hidden.parquet": 0},
        {"nosuch/p2.parquet": 0},
        {"documents/p2.parquet": True},
        ["documents/p2.parquet"],
    ]
    for parts_field in hostile:
        marker.write_text(json.dumps(body | {"parts": parts_field}))
        assert not completion.is_done(store, name), parts_field
    for garbage in ("", "{", "[]", json.dumps(body | {"version": 99})):
        marker.write_text(garbage)
        assert not completion.is_done(store, name)
    marker.write_text(json.dumps(body))
    assert completion.is_done(store, name)
    Path(str(paths[1])).unlink()
    assert not completion.is_done(store, name)
    for bad in ("../x", "a/b", "x" * 200):
        with pytest.raises(ValueError):
            completion.marker_name("segment", bad, "k")


@pytest.mark.prefect
def test_an_old_backup_through_the_cli(tmp_path: Path, tiny_bert_classifier: str) -> None:
    """The probe of issue 14, with a real flow run: a backup taken after a first run, restored
    after a second one with more inputs, then run: exactly the newer documents are processed."""
    data, backup, old, new = (tmp_path / d for d in ("data", "backup", "old", "all"))
    write_inbox(old, range(3))
    write_inbox(new, range(7))
    _, old_shards = run(params(data, old, tiny_bert_classifier, None))
    shutil.copytree(data, backup)
    before = table_counts(data)
    _, new_shards = run(params(data, new, tiny_bert_classifier, None))
    after = table_counts(data)
    shutil.rmtree(data)
    shutil.copytree(backup, data)
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    args = ["run", str(new), "--data-dir", str(data), "--classifier", tiny_bert_classifier, "--no-summarize"]
    args += ["--max-tokens", "300", "--overlap-tokens", "12", "--shard-documents", "2", "--device", "cpu"]
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Nothing new" not in out.stdout
    classified = int(re.search(r"segments classified (\d+)", out.stdout)[1])  # type: ignore[index]
    assert classified == after["segment_labels"][0] - before["segment_labels"][0] > 0
    cached = len({s.key for s in new_shards} & {s.key for s in old_shards})  # shards the backup has whole
    assert f"shards {len(new_shards)}, shards cached {cached} " in out.stdout
    assert table_counts(data) == after and no_duplicates(after)
    rows = warehouse.query(Store(str(data)), "SELECT count(*), count(DISTINCT doc_id) FROM document_results")[1]
    assert rows == [(7, 7)]


def test_markers_in_an_object_store(s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through the storage seam on S3 (moto): written whole, checked, distrusted once a
    named part is gone."""
    import pyarrow.compute as pc

    from tests.conftest import document_row

    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(variable, s3[variable])
    store = Store("s3://longdoc-test/markers")
    part = store.write_part("documents", [document_row("d1", "text")], "p1")
    parts = completion.output_parts(store, [("documents", pc.field("doc_id") == "d1")])
    assert list(parts) == ["documents/p1.parquet"]
    name = completion.marker_name("aggregate", "c0ffee", "k1")
    assert not completion.is_done(store, name)
    completion.record(store, name, parts, {"stage": "aggregate"})
    assert completion.is_done(store, name) and store.read("documents").num_rows == 1
    store.fs_and_base[0].delete_file(str(part))
    assert not completion.is_done(store, name)
