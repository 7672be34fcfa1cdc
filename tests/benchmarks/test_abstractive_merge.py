"""The abstractive merge the quality benchmark measures: grouping in order, merging level by level."""

from __future__ import annotations

from benchmarks.abstractive_merge import group_in_order, merge_summaries


def test_groups_keep_order_fit_room_and_shrink() -> None:
    groups = group_in_order([30, 30, 30, 30, 30], room=70)
    assert [i for g in groups for i in g] == [0, 1, 2, 3, 4]
    assert all(len(g) >= 2 for g in groups)
    assert len(groups) < 5


def test_merging_stops_at_one_summary_and_records_depth() -> None:
    calls: list[list[str]] = []

    def summarize(texts: list[str]) -> list[str]:
        calls.append(texts)
        return ["S(" + t.replace("\n\n", "+") + ")" for t in texts]

    merged = merge_summaries(
        {"one": ["only"], "many": [f"p{i}" for i in range(6)]},
        count=lambda s: len(s),
        summarize=summarize,
        room=8,
    )
    assert merged["one"] == ("only", 0)  # a one-segment document keeps its own summary
    text, depth = merged["many"]
    assert depth >= 2
    assert all(f"p{i}" in text for i in range(6))
    assert text.index("p0") < text.index("p5")
