"""Inference: below the stages. Model resolution (`models`, `weights`), token-budget batching
(`engine`), decoder generation (`decoding`: shared-prefix cache and shape buckets;
`continuous`: rows refilled as they finish; `engines`: transformers or vLLM), the
special-token frames (`frames`) and the per-worker state (`worker`: model caches, plain
tokenizer copies, garbage-collection policy). Reads and writes no table."""

from tasks.inference.engine import BatchLimits, Cancellation, run_batched
from tasks.inference.models import ModelRef, load_model, load_tokenizer, resolve
from tasks.inference.worker import POLICY, plain_backend, prepare_worker, release_models

__all__ = [
    "POLICY",
    "BatchLimits",
    "Cancellation",
    "ModelRef",
    "load_model",
    "load_tokenizer",
    "plain_backend",
    "prepare_worker",
    "release_models",
    "resolve",
    "run_batched",
]
