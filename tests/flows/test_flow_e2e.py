"""The whole flow through Prefect, as `longdoc run` runs it, checked with SQL on the lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DOCS, sql

pytestmark = pytest.mark.prefect


def readme_sql() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sql", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if not line.startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    assert len(statements) >= 6
    return statements


def longdoc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_run_twice_through_prefect(tmp_path: Path, tiny_bert_classifier: str, tiny_llama: str) -> None:
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    inbox.mkdir()
    for name, text in DOCS.items():
        (inbox / name).write_text(text, encoding="utf-8")
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    args = [
        "run",
        str(inbox),
        "--data-dir",
        str(data),
        "--classifier",
        tiny_bert_classifier,
        "--summarizer",
        tiny_llama,
        "--max-new-tokens",
        "8",
        "--max-tokens",
        "400",  # the tiny summarizer's language prompt takes ~300 tokens of its 508
        "--overlap-tokens",
        "12",
    ]
    first = longdoc(*args, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    tables = ["documents", "segments", "segment_labels", "segment_summaries", "document_results"]
    counts = {t: sql(f"SELECT count(*) AS n FROM {t}", data, env)[0]["n"] for t in tables}
    assert counts["documents"] == 3
    assert counts["segments"] > 2 * 3  # two segmentations (classifier, summarizer), several windows each
    assert counts["segment_labels"] + counts["segment_summaries"] == counts["segments"]
    per_doc = sql("SELECT doc_id, count(*) AS n FROM document_results GROUP BY 1", data, env)
    assert len(per_doc) == 3 and all(r["n"] == 1 for r in per_doc)
    results = sql("SELECT label, summary, n_segments FROM document_results", data, env)
    assert all(r["label"] in {"alpha", "beta", "gamma"} and r["n_segments"] > 1 for r in results)
    assert all(isinstance(r["summary"], str) for r in results)
    over = sql("SELECT count(*) AS n FROM segments WHERE input_tokens > max_tokens", data, env)
    assert over[0]["n"] == 0
    assert {r["m"] for r in sql("SELECT DISTINCT max_tokens AS m FROM segments", data, env)} == {128, 400}

    from storage.datasets import Store  # the offsets, checked with Python string indices

    store = Store(str(data))
    docs = {r["doc_id"]: r["text"] for r in store.read("documents").to_pylist()}
    for seg in store.read("segments").to_pylist():
        assert docs[seg["doc_id"]][seg["char_start"] : seg["char_end"]] == seg["text"]

    for statement in readme_sql():  # the README's examples run against a real warehouse
        sql(statement, data, env)

    second = longdoc(*args, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing new" in second.stdout
    assert "shards 1, shards cached 1" in second.stdout  # the finished shard was not opened again
    assert {t: sql(f"SELECT count(*) AS n FROM {t}", data, env)[0]["n"] for t in tables} == counts
    out = longdoc(
        "query", "SELECT status FROM runs ORDER BY started_at", "--data-dir", str(data), "--format", "json", env=env
    )
    assert [r["status"] for r in json.loads(out.stdout)] == ["completed", "completed"]

    # A changed configuration processes again and keeps both results.
    # ... and, told to merge whatever files the lake holds, merges them and answers the same.
    third = longdoc(*args, "--no-summarize", "--merge-files-over", "0", env=env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "merged the lake's small files" in third.stdout + third.stderr
    per_doc = sql("SELECT doc_id, count(DISTINCT config_id) AS n FROM document_results GROUP BY 1", data, env)
    assert len(per_doc) == 3 and all(r["n"] == 2 for r in per_doc)
    assert sql("SELECT count(*) AS n FROM segment_labels", data, env)[0]["n"] == counts["segment_labels"]

    # evaluate: the same flow on a labelled file (results of this configuration are reused),
    # scores in the warehouse and in the evaluation flow run's artifacts.
    labelled = tmp_path / "labelled.jsonl"
    records = [
        {"id": "m", "text": DOCS["meeting.txt"], "label": "alpha", "summary": "The budget for each item."},
        {"id": "n", "text": DOCS["notes.md"], "label": "beta", "summary": "A remote control design."},
    ]
    labelled.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    evaluated = longdoc("evaluate", str(labelled), *args[2:], env=env)
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    assert "first segment" in evaluated.stdout and "Nothing new" in evaluated.stdout
    rows = sql("SELECT run_id, metric, system, subset, n_documents FROM evaluations", data, env)
    found = {(r["metric"], r["system"], r["subset"]): r["n_documents"] for r in rows}
    for metric in ("accuracy", "macro_f1", "rouge1", "rouge2", "rougeL", "unclean_summaries"):
        assert found[metric, "document", "all"] == found[metric, "first_segment", "multi_segment"] == 2
    import sqlite3

    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        keys = {k for (k,) in db.execute("SELECT key FROM artifact")}
        # The temporary server records task runs in batches: each run's are all written by exit.
        task_runs = db.execute("SELECT name, state_type FROM task_run WHERE name LIKE 'segment-shard-%'").fetchall()
    assert f"evaluation-{rows[0]['run_id'].lower()}" in keys
    assert task_runs == [("segment-shard-0", "COMPLETED")] * 4  # run, re-run, --no-summarize, evaluate

    # The lake's recovery (closing crashed runs, checking data files) changes no answer.
    snapshot = {t: sql(f"SELECT * FROM {t} ORDER BY ALL", data, env) for t in tables}
    assert longdoc("rebuild", "--data-dir", str(data), env=env).returncode == 0
    assert {t: sql(f"SELECT * FROM {t} ORDER BY ALL", data, env) for t in tables} == snapshot


def test_bad_sql_is_one_line_and_nonzero(tmp_path: Path) -> None:
    out = longdoc("query", "SELECT 1", "--data-dir", str(tmp_path), env=dict(os.environ))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "longdoc: error:" in out.stderr
