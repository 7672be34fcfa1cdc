"""Document labels from segment scores."""

from __future__ import annotations

import pytest

from tasks.aggregate.aggregate import pool_labels


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
