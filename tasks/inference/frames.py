"""Token frames: the special tokens a tokenizer puts around any text.

Both the plan (the classifier's budget) and summarize (a seq2seq prompt) need them, so they live
here, below the stages, rather than in either.
"""

from __future__ import annotations

from typing import Any


def special_frame(tokenizer: Any, prefix_text: str = "") -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after any text."""
    probe = "hello"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    at = next(i for i in range(len(full) - len(bare) + 1) if full[i : i + len(bare)] == bare)
    prefix = tokenizer(prefix_text, add_special_tokens=False)["input_ids"] if prefix_text else []
    return list(full[:at]) + list(prefix), list(full[at + len(bare) :])
