"""The abstractive merge, measured against the pipeline's extractive one (quality_bench.py).

Segment summaries, in order, grouped to fit the summarizer's budget and summarized again, level
after level, until one remains. The pipeline does not use it (tasks/aggregate/merge.py is what it
uses), so it lives next to the benchmark that does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence


def group_in_order(counts: Sequence[int], room: int, separator: int = 2) -> list[list[int]]:
    """Consecutive indices grouped so each group's tokens (with separators) fit `room`; every
    group of a multi-item input holds at least two items, so each level shrinks the list."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, count in enumerate(counts):
        extra = count + (separator if current else 0)
        if current and used + extra > room and len(current) >= 2:
            groups.append(current)
            current, used = [], 0
            extra = count
        current.append(i)
        used += extra
    if current:
        if len(current) == 1 and groups:
            groups[-1].append(current[0])
        else:
            groups.append(current)
    return groups


def merge_summaries(
    per_doc: dict[str, list[str]],
    count: Callable[[str], int],
    summarize: Callable[[list[str]], list[str]],
    room: int,
) -> dict[str, tuple[str, int]]:
    """One summary per document and the number of merge levels it took, batching each level
    across documents."""
    pending = {doc: list(items) for doc, items in per_doc.items() if items}
    result: dict[str, tuple[str, int]] = {}
    depth = 0
    while pending:
        for doc in [d for d, items in pending.items() if len(items) == 1]:
            result[doc] = (pending.pop(doc)[0], depth)
        if not pending:
            break
        depth += 1
        jobs: list[tuple[str, str]] = []
        for doc, items in pending.items():
            for group in group_in_order([count(s) for s in items], room):
                jobs.append((doc, "\n\n".join(items[i] for i in group)))
        outputs = summarize([text for _, text in jobs])
        pending = defaultdict(list)
        for (doc, _), summary in zip(jobs, outputs, strict=True):
            pending[doc].append(summary)
        pending = dict(pending)
    return result
