"""Token-budget batching: budget respected, order restored, out-of-memory back-off."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.inference.engine import BatchLimits, pad_batch, plan_batches, run_batched


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=200), st.integers(min_value=1, max_value=16))
def test_batches_cover_every_index_once_within_budget(lengths: list[int], max_rows: int) -> None:
    limits = BatchLimits(token_budget=512, max_rows=max_rows)
    batches = plan_batches(lengths, limits)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= max_rows
        width = max(lengths[i] for i in batch)
        assert len(batch) == 1 or width * len(batch) <= limits.token_budget


def test_sorted_batches_pad_less_than_input_order() -> None:
    lengths = [10, 200, 12, 190, 11, 210, 9, 205] * 8
    limits = BatchLimits(token_budget=100_000, max_rows=8)

    def efficiency(batches: list[list[int]]) -> float:
        real = sum(lengths[i] for b in batches for i in b)
        return real / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    fixed = [list(range(i, i + 8)) for i in range(0, len(lengths), 8)]
    assert efficiency(plan_batches(lengths, limits)) > 0.9 > efficiency(fixed)


def test_results_come_back_in_input_order() -> None:
    lengths = [5, 50, 1, 30, 7]
    seen: list[list[int]] = []

    def run(batch: list[int]) -> list[int]:
        seen.append(batch)
        return [i * 10 for i in batch]

    out = run_batched(lengths, run, BatchLimits(token_budget=60, max_rows=2))
    assert out == [0, 10, 20, 30, 40]
    assert seen[0][0] == 1  # the longest first


def test_out_of_memory_halves_the_batch_without_losing_or_repeating_rows() -> None:
    calls: list[list[int]] = []

    def run(batch: list[int]) -> list[int]:
        calls.append(batch)
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [i + 100 for i in batch]

    out = run_batched([3] * 8, run, BatchLimits(token_budget=1000, max_rows=8))
    assert out == [i + 100 for i in range(8)]
    processed = [i for c in calls if len(c) <= 2 for i in c]
    assert sorted(processed) == list(range(8))


def test_other_errors_are_not_swallowed() -> None:
    def run(batch: list[int]) -> list[int]:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_batched([1, 2], run, BatchLimits(100, 4))


def test_padding_is_left_for_decoders_and_right_for_encoders() -> None:
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0, left=True)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0, left=False)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]]
