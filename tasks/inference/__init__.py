"""Inference: below the stages. Model resolution (`models`, `weights`), token-budget batching
(`engine`) and the special-token frames (`frames`). Reads and writes no table."""

from tasks.inference.engine import BatchLimits, Cancellation, run_batched
from tasks.inference.models import ModelRef, load_model, load_tokenizer, resolve

__all__ = ["BatchLimits", "Cancellation", "ModelRef", "load_model", "load_tokenizer", "resolve", "run_batched"]
