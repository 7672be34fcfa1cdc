"""Decoding paths (shared-prefix cache, shape buckets, continuous batching) against plain
left-padded `model.generate`: greedy tokens must be identical on CPU fp32, on tiny random
decoders of the default summarizers' two architectures (Llama for SmolLM2, Qwen2)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tasks.errors import Cancelled
from tasks.inference.continuous import run_continuous
from tasks.inference.decoding import (
    ROW_BUCKETS,
    WIDTH_BUCKETS,
    Decoding,
    Generation,
    bucket,
    common_prefix,
    generate_static,
)
from tasks.inference.engine import Cancellation, pad_batch
from tasks.inference.models import load_model, load_tokenizer, resolve
from tasks.summarize.repeats import allowed_scripts, no_repeat_in_output, vocabulary_scripts
from tasks.summarize.summarize import NO_REPEAT_NGRAM, prompt_frame
from tests.conftest import CHATML, TRAINING_TEXT, byte_bpe_tokenizer

MAX_NEW = 12
LONG = 40  # new tokens enough for a tiny random model to repeat itself


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = byte_bpe_tokenizer()
    tokenizer.chat_template = CHATML
    torch.manual_seed(1)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("qwen2")
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(params=["tiny_llama", "tiny_qwen2"])
def decoder(request: pytest.FixtureRequest) -> tuple[object, list[list[int]], int]:
    """A tiny decoder, the summarize prompts of texts of mixed lengths, and its pad id."""
    ref = resolve(request.getfixturevalue(request.param), "summarizer")
    tokenizer = load_tokenizer(ref.path)
    model = load_model(ref.path, "decoder", "cpu")
    before, _after = prompt_frame(tokenizer, "decoder")
    texts = [TRAINING_TEXT[i][: 15 + 9 * i] for i in range(7)]
    # no closing frame: rows that end alike make a tiny random model write alike
    rows = [before + tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return model, rows, tokenizer.pad_token_id


def generation(model: object, pad_id: int, eos: list[int], cancel: Cancellation | None = None) -> Generation:
    def processors(indices: list[int], start: int) -> list[object]:
        return [no_repeat_in_output(start, NO_REPEAT_NGRAM), one_index_per_row(indices)]

    return Generation(model, pad_id, eos, MAX_NEW, processors, cancel or Cancellation())


def one_index_per_row(indices: list[int]) -> object:
    """A processor that checks it was made for exactly the rows it sees (per-row processors,
    such as the language-aware repeat ban, index their own tables by row)."""

    def check(input_ids, scores):  # type: ignore[no-untyped-def]
        assert input_ids.shape[0] == len(indices) == scores.shape[0]
        return scores

    return check


def plain(
    model: object,
    rows: list[list[int]],
    pad_id: int,
    eos: list[int],
    ban: Callable[[int], list[object]] | None = None,
    max_new: int = MAX_NEW,
) -> list[list[int]]:
    """Today's path: one left-padded generate, new tokens cut at the first eos; `ban(start)`
    gives its processors (the script-blind repeat ban when None)."""
    import torch

    ids, mask = pad_batch(rows, pad_id, left=True)
    with torch.inference_mode():
        out = model.generate(  # type: ignore[attr-defined]
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id,
            eos_token_id=eos,
            logits_processor=ban(ids.shape[1]) if ban else [no_repeat_in_output(ids.shape[1], NO_REPEAT_NGRAM)],
        )
    return [until_eos(row.tolist(), eos) for row in out[:, ids.shape[1] :]]


def until_eos(tokens: list[int], eos: list[int]) -> list[int]:
    end = next((n for n, t in enumerate(tokens) if t in eos), None)
    return tokens[: end + 1] if end is not None else tokens


def staggered_eos(tokens: list[list[int]]) -> int:
    """A token the model writes at different steps in different rows (or not at all): taken as
    an extra eos, rows end at different steps, so padding follows some rows and not others."""
    candidates = {t for row in tokens for t in row}

    def ends(t: int) -> int:
        return len({row.index(t) if t in row else MAX_NEW for row in tokens})

    return max(sorted(candidates), key=ends)


def test_bucket_table() -> None:
    assert [bucket(n, ROW_BUCKETS) for n in (1, 3, 8, 9, 100, 129, 300)] == [1, 4, 8, 16, 128, 256, 512]
    widths = [bucket(n, WIDTH_BUCKETS) for n in (1, 64, 65, 700, 1025, 1100, 4096, 4097)]
    assert widths == [64, 64, 128, 768, 1152, 1152, 4096, 8192]
    assert all(bucket(n, WIDTH_BUCKETS) < 1.15 * n for n in range(896, 1281))  # little padding near 1k


def test_common_prefix_leaves_every_row_a_token_of_its_own() -> None:
    assert common_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert common_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix([[7], [7, 8]]) == 0


@pytest.mark.parametrize(
    "decoding",
    [Decoding(prefix_cache=True), Decoding(buckets=True), Decoding(prefix_cache=True, buckets=True)],
    ids=["prefix", "buckets", "prefix+buckets"],
)
def test_static_paths_equal_plain_generate(decoder, decoding: Decoding) -> None:
    import torch

    model, rows, pad_id = decoder
    eos = [model.generation_config.eos_token_id]
    reference = plain(model, rows, pad_id, eos)
    eos.append(staggered_eos(reference))  # some rows now end early, padding after them
    reference = plain(model, rows, pad_id, eos)
    assert len({len(r) for r in reference}) > 1
    gen = generation(model, pad_id, eos)
    with torch.inference_mode():
        got = [until_eos(t, eos) for t in generate_static(gen, rows, list(range(len(rows))), decoding)]
    assert got == reference
    if decoding.prefix_cache:  # the system message and template really came from the cache
        [prefix] = gen.prefixes
        assert len(prefix) == common_prefix(rows) > 10


@pytest.mark.parametrize("use_prefix", [False, True], ids=["plain", "prefix"])
def test_continuous_equals_static_and_keeps_order(decoder, use_prefix: bool) -> None:
    import torch

    model, rows, pad_id = decoder
    eos = [model.generation_config.eos_token_id]
    eos.append(staggered_eos(plain(model, rows, pad_id, eos)))
    reference = plain(model, rows, pad_id, eos)
    ended = []
    gen = generation(model, pad_id, eos)
    with torch.inference_mode():
        got = run_continuous(gen, rows, 3, use_prefix, lambda done, total: ended.append(done))
    assert got == reference
    assert ended == list(range(1, len(rows) + 1))  # progress as each row ends


def test_continuous_stops_on_cancellation(decoder) -> None:
    import torch

    model, rows, pad_id = decoder
    cancel = Cancellation()
    gen = generation(model, pad_id, [model.generation_config.eos_token_id], cancel)

    def stop_after_first(done: int, total: int) -> None:
        cancel.request("stop")

    with torch.inference_mode(), pytest.raises(Cancelled):
        run_continuous(gen, rows, 2, True, stop_after_first)


@pytest.mark.parametrize("model_name", ["tiny_llama", "tiny_qwen2"])
def test_chinese_and_english_rows_decode_alike_on_every_path_with_the_language_ban(
    request: pytest.FixtureRequest, model_name: str
) -> None:
    """Summaries of texts of two languages in one batch, with the script-keeping repeat ban of
    tasks/summarize/repeats.py (a per-row processor: each row allows its own language's
    scripts): every decoding path gives the very tokens of plain generate with the same ban."""
    import torch

    path = resolve(request.getfixturevalue(model_name), "summarizer").path
    tokenizer = load_tokenizer(path)
    model = load_model(path, "decoder", "cpu")
    texts = {"zh": ["东京开会了。预算讨论了。", "会议讨论了预算和遥控器的设计。"], "en": TRAINING_TEXT[:3]}
    languages, rows = [], []
    for language, some in texts.items():
        before, _after = prompt_frame(tokenizer, "decoder", language=language)  # each language's own
        for text in some:  # no closing frame, as above: rows that end alike make a tiny model write alike
            languages.append(language)
            rows.append(before + tokenizer(text, add_special_tokens=False)["input_ids"])
    scripts = vocabulary_scripts(path)
    pad_id, eos = tokenizer.pad_token_id, [model.generation_config.eos_token_id]

    def bans(indices: list[int], start: int) -> list[object]:
        chosen = allowed_scripts([languages[i] for i in indices])
        return [no_repeat_in_output(start, NO_REPEAT_NGRAM, scripts, chosen), one_index_per_row(indices)]

    every_row = list(range(len(rows)))
    reference = plain(model, rows, pad_id, eos, lambda start: bans(every_row, start), LONG)
    assert reference != plain(model, rows, pad_id, eos, lambda start: [], LONG)  # the ban really acts here
    blind = plain(model, rows, pad_id, eos, lambda start: [no_repeat_in_output(start, NO_REPEAT_NGRAM)], LONG)
    assert reference[:2] != blind[:2]  # and keeping the Chinese rows' script changes what they write
    gen = Generation(model, pad_id, eos, LONG, bans, Cancellation())
    paths = [Decoding(prefix_cache=True), Decoding(buckets=True), Decoding(prefix_cache=True, buckets=True)]
    paths.append(Decoding(compiled=True))
    with torch.inference_mode():
        for decoding in paths:  # the batch in its mixed order; 5 rows fill a bucket of 8 with copies
            got = [until_eos(t, eos) for t in generate_static(gen, rows, list(range(len(rows))), decoding)]
            assert got == reference, decoding
        for use_prefix in (False, True):
            assert run_continuous(gen, rows, 3, use_prefix) == reference, use_prefix
