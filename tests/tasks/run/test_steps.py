"""The run record: every run, failed ones included, leaves a row in `runs`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from storage import warehouse
from storage.datasets import Store
from tasks.run.results import ClassifyResult, IngestResult, RunResults
from tasks.run.steps import new_run_id, step_record_run


def test_completed_and_failed_runs_are_recorded(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    stages = RunResults(
        ingest=IngestResult(documents=3, doc_ids=["a", "b", "c"], seconds=0.5),
        classify=ClassifyResult(classify_tokens=1000, seconds=2.0),
    )
    store = Store(data)
    ok = step_record_run(
        store, new_run_id(), "flow-1", "cfg", datetime.now(UTC), {"inputs": ["x"]}, stages, "completed"
    )
    assert ok.tokens_per_s == 500.0 and ok.stage_seconds == {"ingest": 0.5, "classify": 2.0}
    step_record_run(
        store,
        new_run_id(),
        "flow-2",
        None,
        datetime.now(UTC),
        {"inputs": ["y"]},
        RunResults(),
        "failed",
        "ModelError: no such model",
    )
    _, rows = warehouse.query(Store(data), "SELECT status, error, counts, parameters FROM runs ORDER BY status")
    assert [r[0] for r in rows] == ["completed", "failed"]
    assert rows[1][1] == "ModelError: no such model"
    ingest_counts = dict.fromkeys(
        ("files", "files_unchanged", "documents_new", "documents_known", "rejects", "rejects_new"), 0
    )
    expected = ingest_counts | {
        "documents": 3,
        "rejects_by_reason": {},
        "classify_tokens": 1000,
        "classify_shards_skipped": 0,
    }
    assert json.loads(rows[0][2]) == expected  # ids and seconds are not counts; unreported counts are left out
    assert json.loads(rows[0][3]) == {"inputs": ["x"]}
