"""Completion recorded where the data is: a shard stage is skipped only when the lake holds its
completion row, committed in the same transaction as the stage's rows (tests/storage/test_lake.py
kills a stage between the two). A copied and an old restored data directory each get exactly the
missing work done, nothing twice (rows and distinct keys counted in the lake, inference counted
in the run's counts); a data file lost from under the catalog is named by `rebuild`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from flows.params import ProcessParams
from storage import warehouse
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
        max_tokens=None,  # each model's own budget: the summarizer's prompt takes ~300 of its 488
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
    """(rows, distinct keys) per result table, as the lake holds them now."""
    counts = {}
    for table in TABLES:
        rows = Store(str(data)).read(table, list(KEYS[table])).to_pylist()
        counts[table] = (len(rows), len({tuple(r.values()) for r in rows}))
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
    assert table_counts(copy) == counts


def test_a_data_file_lost_from_under_the_catalog_is_named(complete) -> None:
    """The lake's catalog names its data files; one deleted behind its back cannot be skipped
    over silently: `rebuild` names it (and reads of it fail, never answer without it)."""
    from datetime import timedelta

    _, data, _ = complete
    warehouse.compact(Store(str(data)), timedelta(days=7))  # small commits' rows, inlined in the catalog, into files
    lost = sorted((data / "main" / "segment_labels").glob("*.parquet"))[-1]
    lost.unlink()
    assert warehouse.rebuild(Store(str(data))).missing_files == [str(lost)]
    with pytest.raises(warehouse.WarehouseError):
        warehouse.query(Store(str(data)), "SELECT count(*) FROM segment_labels")


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
