"""The progress reporter: few round trips to the server; the first batch and the end always
logged; the artifact moved seldom, and to 100 by the flow at the end."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from flows import observe


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, list[Any], list[float]]:
    clock, logged, moved = Clock(), [], []
    logger = logging.getLogger("test-observe")
    monkeypatch.setattr(observe, "get_run_logger", lambda: logger)
    monkeypatch.setattr(observe.time, "monotonic", clock)
    monkeypatch.setattr(logger, "info", lambda *a, **k: logged.append(k["extra"][observe.PROGRESS_EXTRA]))
    import prefect.artifacts

    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", lambda _id, value: moved.append(value))
    return clock, logged, moved


def test_a_fast_task_logs_its_first_batch_and_its_end_and_leaves_the_artifact_to_the_flow(reports: Any) -> None:
    clock, logged, moved = reports
    report = observe.progress_reporter("classify", observe.ProgressSpec("0" * 32, 1, 4))
    for done in [*range(8, 100, 8), 100]:  # 13 batches in half a second
        clock.now += 0.04
        report(done, 100)
    assert logged == [("classify", 8, 100), ("classify", 100, 100)]
    assert moved == []
    observe.finish_progress(observe.RunProgress("0" * 32, 4))
    assert moved == [100.0]


def test_a_slow_task_reports_every_interval_and_every_tenth_at_most(reports: Any) -> None:
    clock, logged, moved = reports
    report = observe.progress_reporter("summarize", observe.ProgressSpec("0" * 32, 0, 1), interval=2.0)
    for done in range(1, 101):  # a batch a second
        clock.now += 1.0
        report(done, 100)
    steps = [done for _, done, _ in logged]
    assert steps[0] == 1 and steps[-1] == 100
    assert len(steps) == 11  # once per tenth: the interval never held a tenth back here
    assert all(b - a >= 2 for a, b in itertools.pairwise(steps))
    assert moved == [10.0 * tenth for tenth in range(1, 11)]  # once per tenth: ten seconds apart here


def test_the_artifact_moves_once_in_ten_seconds_at_most(reports: Any) -> None:
    clock, logged, moved = reports
    report = observe.progress_reporter("summarize", observe.ProgressSpec("0" * 32, 0, 1))
    for done in range(1, 101):  # a batch every quarter second: a tenth every 2.5 s
        clock.now += 0.25
        report(done, 100)
    assert moved == [40.0, 80.0]
    assert [done for _, done, _ in logged][-1] == 100
