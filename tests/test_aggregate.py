"""Document labels from segment scores, and hierarchical merging of summaries."""

from __future__ import annotations

import pytest

from tasks.aggregate import group_in_order, merge_summaries, pool_labels


def test_label_is_token_weighted_with_overlap_counted_once() -> None:
    # segment 1: 100 tokens, no overlap; segment 2: 60 tokens of which 20 shared -> weight 40
    doc = pool_labels([(100, 0, {"a": 0.8, "b": 0.2}), (60, 20, {"a": 0.1, "b": 0.9})])
    assert doc.scores["a"] == pytest.approx((100 * 0.8 + 40 * 0.1) / 140)
    assert doc.scores["b"] == pytest.approx((100 * 0.2 + 40 * 0.9) / 140)
    assert doc.label == "a" and doc.score == pytest.approx(84 / 140)
    assert doc.max_scores == {"a": 0.8, "b": 0.9}


def test_a_heavier_segment_wins_over_a_confident_short_one() -> None:
    doc = pool_labels([(10, 0, {"x": 0.99, "y": 0.01}), (200, 5, {"x": 0.4, "y": 0.6})])
    assert doc.label == "y"


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
