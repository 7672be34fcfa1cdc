"""The generation engine: transformers (the default, decoding.py) or vLLM's offline API for
those who have it. vLLM reads the very token ids the transformers path reads (same frames,
same truncation) and decodes greedily with the same limit and stop tokens.

vLLM (v1) takes no per-request Python logits processor, so the summaries' repeat ban does not
run there: its outputs may differ where the ban would have fired (the benchmark counts them).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from tasks.errors import ConfigError
from tasks.inference.decoding import Decoding, Generation, generate_static, use_compile_cache
from tasks.inference.engine import BatchLimits, Progress, inference, run_batched
from tasks.inference.models import default_cache_dir

Engine = Literal["transformers", "vllm"]
ENGINES: tuple[Engine, ...] = ("transformers", "vllm")
DEFAULT_ENGINE: Engine = "transformers"


def engine_from_env() -> str:
    return os.environ.get("LONGDOC_ENGINE", DEFAULT_ENGINE)


def check_engine(engine: str) -> Engine:
    """The engine named, or a one-line ConfigError before any work starts."""
    if engine == "transformers":
        return "transformers"
    if engine == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError(
                "--engine vllm needs the vllm package, which is not installed here "
                "(install it on a CUDA machine, or use --engine transformers)"
            )
        return "vllm"
    raise ConfigError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class VllmRequest:
    """What `LLM.generate` is given: token-id prompts and greedy sampling settings."""

    prompts: list[dict[str, list[int]]]
    sampling: dict[str, Any]


def vllm_request(rows: list[list[int]], max_new_tokens: int, eos: list[int]) -> VllmRequest:
    return VllmRequest(
        prompts=[{"prompt_token_ids": list(row)} for row in rows],
        sampling={
            "temperature": 0.0,
            "max_tokens": max_new_tokens,
            "stop_token_ids": list(eos),
            "ignore_eos": False,
            "detokenize": False,  # longdoc decodes the ids itself, as on the transformers path
        },
    )


def generation_config(path: str) -> Any:
    """The model's generation settings (eos ids) without loading its weights."""
    from transformers import AutoConfig, GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path)
    except OSError:  # no generation_config.json: the model's configuration says
        return GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))


@cache
def _vllm_model(path: str) -> Any:
    """One vLLM engine per model directory per process (it owns the GPU's memory)."""
    from vllm import LLM  # type: ignore[import-not-found]

    # bf16, as longdoc's own CUDA path; prefix caching shares the system message's blocks
    return LLM(model=path, dtype="bfloat16", tokenizer=path, trust_remote_code=False, enable_prefix_caching=True)


def generate_vllm(path: str, rows: list[list[int]], max_new_tokens: int, eos: list[int]) -> list[list[int]]:
    """New token ids per row, in input order (vLLM schedules and batches internally)."""
    check_engine("vllm")
    from vllm import SamplingParams

    request = vllm_request(rows, max_new_tokens, eos)
    outputs = _vllm_model(path).generate(request.prompts, SamplingParams(**request.sampling), use_tqdm=False)
    return [list(out.outputs[0].token_ids) for out in outputs]


def decoder_tokens(
    gen: Generation,
    path: str,
    rows: list[list[int]],
    lengths: list[int],
    limits: BatchLimits,
    device: str,
    decoding: Decoding | None,
    engine: str,
    static_cache: bool,
    progress: Progress | None,
) -> list[list[int]]:
    """Greedy new tokens of a decoder for every row, in input order, by the engine and decoding
    asked for: vLLM, the continuous loop, or static token-budget batches (back-off on OOM)."""
    from dataclasses import replace

    from tasks.inference.continuous import run_continuous

    if check_engine(engine) == "vllm":
        tokens = generate_vllm(path, rows, gen.max_new_tokens, gen.eos)
        if progress:
            progress(len(rows), len(rows))
        return tokens
    decoding = decoding or Decoding.for_device(device)
    if static_cache:
        decoding = replace(decoding, compiled=True, continuous=False)
    if decoding.compiled:
        use_compile_cache(default_cache_dir())
    with inference(device):
        if decoding.continuous:
            return run_continuous(gen, rows, limits.max_rows, decoding.prefix_cache, progress)
        return run_batched(
            lengths, lambda batch: generate_static(gen, rows, batch, decoding), limits, progress, gen.cancel
        )
