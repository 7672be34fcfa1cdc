"""The engine option: vLLM where installed, a one-line error before any work where not, and
vLLM's inputs built from the very token ids the transformers path reads."""

from __future__ import annotations

import importlib.util

import pytest

from tasks.errors import ConfigError
from tasks.inference.engines import check_engine, vllm_request
from tasks.inference.models import load_tokenizer, resolve
from tasks.summarize.summarize import SummarizerSpec, prompt_frame, summarize_texts

VLLM_HERE = importlib.util.find_spec("vllm") is not None


def test_transformers_is_always_there() -> None:
    assert check_engine("transformers") == "transformers"


@pytest.mark.skipif(VLLM_HERE, reason="the error path needs a machine without vllm")
def test_vllm_missing_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as raised:
        check_engine("vllm")
    message = str(raised.value)
    assert "\n" not in message and "--engine vllm" in message and "--engine transformers" in message


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown engine 'tensorrt'"):
        check_engine("tensorrt")


@pytest.mark.skipif(VLLM_HERE, reason="the error path needs a machine without vllm")
def test_summarize_with_missing_vllm_fails_before_loading_the_model(tmp_path) -> None:
    from tasks.inference.models import ModelRef

    # a model directory that does not exist: reaching the loader would be another error
    ref = ModelRef(name="absent", path=str(tmp_path / "absent"), kind="decoder", max_input_tokens=512, fingerprint="0")
    with pytest.raises(ConfigError, match="--engine vllm"):
        summarize_texts(SummarizerSpec(ref), ["some text"], "cpu", engine="vllm")


def test_vllm_request_reads_the_same_frames(tiny_llama) -> None:
    ref = resolve(tiny_llama, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    before, after = prompt_frame(tokenizer, "decoder")
    rows = [before + tokenizer(t, add_special_tokens=False)["input_ids"] + after for t in ("One.", "Two more words.")]
    request = vllm_request(rows, 80, [tokenizer.eos_token_id])
    assert [p["prompt_token_ids"] for p in request.prompts] == rows
    assert request.sampling["temperature"] == 0.0
    assert request.sampling["max_tokens"] == 80
    assert request.sampling["stop_token_ids"] == [tokenizer.eos_token_id]
