"""Reading a lake that is being written, through `longdoc query` only: a query during a run sees
the lake as before the run or as after it, never half a run; `--as-of RUN_ID` answers as the
lake stood after that run (issue 16)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.lake_cli import Lake, model_args, write_inputs

pytestmark = [pytest.mark.prefect, pytest.mark.processes]

# One statement, one snapshot: how much of every stage's output the lake holds.
COUNTS = (
    "SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM segments) AS segments, "
    "(SELECT count(*) FROM segment_labels) AS labels, (SELECT count(*) FROM document_results) AS results, "
    "(SELECT count(*) FROM runs WHERE status = 'completed') AS runs"
)


def test_queries_during_a_run_see_whole_runs(
    prefect_server_env: dict[str, str], tiny_bert_classifier: str, tmp_path: Path
) -> None:
    files = write_inputs(tmp_path / "inputs")
    models = model_args(tiny_bert_classifier, None)
    lake = Lake(str(tmp_path / "data"), prefect_server_env)
    lake.run([str(files["meeting.txt"])], models)
    before = lake.query(COUNTS)

    # Many documents, one per shard: the run commits stage by stage for a while.
    later = [str(path) for name, path in sorted(files.items()) if name != "meeting.txt"]
    run = lake.start_run(later, models)
    answers, during = [], 0
    while run.poll() is None:
        answers.append(lake.query(COUNTS))  # a failed query fails here, with its message
        during += run.poll() is None
    lake.wait(run)
    after = lake.query(COUNTS)

    assert before != after and after[0]["runs"] == 2
    assert during >= 1, "no query ran while the run wrote: the test proved nothing"
    half = [a for a in answers if a not in (before, after)]
    assert not half, (
        f"{len(half)} of {len(answers)} answers saw half a run: {half[:3]} (before {before}, after {after})"
    )


def test_as_of_answers_as_the_lake_stood_after_that_run(
    prefect_server_env: dict[str, str], tiny_bert_classifier: str, tmp_path: Path
) -> None:
    files = write_inputs(tmp_path / "inputs")
    models = model_args(tiny_bert_classifier, None)
    lake = Lake(str(tmp_path / "data"), prefect_server_env)
    lake.run([str(files["meeting.txt"]), str(files["broken.pdf"])], models)
    first_run = lake.run_ids()
    after_first = lake.contents(compared_only=False)
    time.sleep(1)  # runs ordered by their start, a second apart at least
    lake.run([str(files["notes.md"]), str(files["records.jsonl"]), str(files["broken.pdf"])], models)
    second_run = [r for r in lake.run_ids() if r not in first_run]
    assert len(first_run) == 1 and len(second_run) == 1
    now = lake.contents(compared_only=False)
    assert len(now["documents"]) == len(after_first["documents"]) + 5

    assert lake.contents(as_of=first_run[0], compared_only=False) == after_first
    assert lake.contents(as_of=second_run[0], compared_only=False) == now
    assert lake.query("SELECT run_id FROM runs", as_of=first_run[0]) == [{"run_id": first_run[0]}]

    unknown = lake.cli("query", "SELECT 1", *lake.lake_args(), "--as-of", "20200101T000000-nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("longdoc: error:") and "20200101T000000-nosuch" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
