"""Summarization backends with tiny random models: batched equals unbatched, clean output."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.inference.engine import BatchLimits
from tasks.inference.models import load_tokenizer, resolve
from tasks.summarize.repeats import no_repeat_in_output
from tasks.summarize.summarize import SummarizerSpec, prompt_frame, summarize_texts
from tests.conftest import TRAINING_TEXT

TEXTS = [
    "The committee met on Tuesday to discuss the budget. Members asked for more detail!",
    "A remote control needs buttons, a battery and a case.",
    "Speech recognition models were trained on meetings; the error rate fell by ten percent. " * 4,
]


def test_decoder_prompt_wraps_the_text_in_the_chat_template(tiny_llama) -> None:
    ref = resolve(tiny_llama, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    before, after = prompt_frame(tokenizer, "decoder")
    assert tokenizer.decode(before).startswith("<|im_start|>system")
    assert tokenizer.decode(after).endswith("<|im_start|>assistant\nThe main point is that")  # its lead


def test_seq2seq_frame_is_the_special_tokens(tiny_bart) -> None:
    ref = resolve(tiny_bart, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    before, after = prompt_frame(tokenizer, "seq2seq")
    assert before == [tokenizer.bos_token_id] and after == [tokenizer.eos_token_id]


def _check_batched_equals_alone(path: str) -> None:
    spec = SummarizerSpec(resolve(path, "summarizer"), max_new_tokens=12)
    together = summarize_texts(spec, TEXTS, "cpu")
    alone = [summarize_texts(spec, [t], "cpu")[0] for t in TEXTS]
    assert [s.text for s in together] == [s.text for s in alone]
    for summary in together:
        assert 0 < summary.n_output_tokens <= 12
        assert "<|im_start|>" not in summary.text and "<|im_end|>" not in summary.text
        assert summary.truncated_tokens == 0


def test_llama_batched_equals_one_at_a_time(tiny_llama) -> None:
    _check_batched_equals_alone(tiny_llama)


def test_bart_batched_equals_one_at_a_time(tiny_bart) -> None:
    _check_batched_equals_alone(tiny_bart)


def test_input_over_the_context_is_counted(tiny_bart) -> None:
    spec = SummarizerSpec(resolve(tiny_bart, "summarizer"), max_new_tokens=4)
    [summary] = summarize_texts(spec, ["word " * 400], "cpu")
    assert summary.n_input_tokens == spec.max_input_tokens == 256
    assert summary.truncated_tokens > 0


def _banned_by_reference(generated: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram of `generated`, found by scanning every window."""
    if len(generated) < n:
        return set()
    prefix = generated[len(generated) - n + 1 :]
    return {generated[i + n - 1] for i in range(len(generated) - n + 1) if generated[i : i + n - 1] == prefix}


@settings(max_examples=200)
@given(
    rows=st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=30), min_size=1, max_size=4),
    prompt=st.integers(0, 3),
    n=st.integers(2, 4),
)
def test_repeat_ban_covers_exactly_the_repeating_tokens_of_the_output(
    rows: list[list[int]], prompt: int, n: int
) -> None:
    import torch

    width = max(len(r) for r in rows)
    rows = [r + [0] * (width - len(r)) for r in rows]  # rows of one batch share a length
    prompt_ids = [[5] * prompt for _ in rows]  # the prompt repeats itself, and must not count
    input_ids = torch.tensor([p + r for p, r in zip(prompt_ids, rows, strict=True)], dtype=torch.long).reshape(
        len(rows), prompt + width
    )
    scores = torch.zeros(len(rows), 6)
    out = no_repeat_in_output(prompt, n)(input_ids, scores.clone())
    for k, row in enumerate(rows):
        assert {t for t in range(6) if out[k, t] == -float("inf")} == _banned_by_reference(row, n)


def test_every_summary_is_repaired_against_the_text_it_summarizes(tiny_llama, monkeypatch) -> None:
    import tasks.summarize.summarize as summarize

    # what a small model writes over a transcript: a quoted turn, then a template remnant
    written = "Grad C: we should order the new microphones .\nassistant\nThe team agreed to order two."
    monkeypatch.setattr(summarize, "_decode", lambda *args: (written, 20, False))
    transcript = "Grad C: we should order the new microphones .\nPhD A: they cost fifty euros each .\n"
    spec = SummarizerSpec(resolve(tiny_llama, "summarizer"), max_new_tokens=4)
    from tasks.language import INSTRUCTIONS

    unled = (INSTRUCTIONS["en"].system, INSTRUCTIONS["en"].user)  # the repair alone, no lead before it
    on_transcript, on_prose = summarize_texts(spec, [transcript, "The committee met on Tuesday."], "cpu", prompt=unled)
    assert on_transcript.text == "The team agreed to order two."
    # a text without turns has no speakers: its summary keeps "Grad C:", loses the remnant
    assert on_prose.text == "Grad C: we should order the new microphones .\nThe team agreed to order two."
    assert on_transcript.n_output_tokens == 20  # what the model wrote is still what is counted


def test_chinese_text_is_asked_in_chinese_and_its_language_stored(tiny_llama) -> None:
    ref = resolve(tiny_llama, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    zh_before, zh_after = prompt_frame(tokenizer, "decoder", language="zh")
    en_before, en_after = prompt_frame(tokenizer, "decoder", language="en")
    assert "请用两三句话概括上文" in tokenizer.decode(zh_after)
    assert "请用" not in tokenizer.decode(en_after) and "main points" in tokenizer.decode(en_after)
    spec = SummarizerSpec(ref, max_new_tokens=4)
    chinese, english = "东京开会了。预算讨论了。", "The committee met on Tuesday."
    zh, en = summarize_texts(spec, [chinese, english], "cpu")
    assert (zh.language, en.language) == ("zh", "en")
    assert zh.raw.startswith("主要观点是：") and en.raw.startswith("The main point is that")  # each its own lead
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert zh.n_input_tokens == len(zh_before) + len(encode(chinese)) + len(zh_after)
    assert en.n_input_tokens == len(en_before) + len(encode(english)) + len(en_after)


def test_segments_leave_room_for_the_longest_prompt_of_any_language(tiny_llama) -> None:
    from tasks.language import INSTRUCTIONS
    from tasks.summarize.summarize import frame_overhead

    ref = resolve(tiny_llama, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    sizes = [sum(map(len, prompt_frame(tokenizer, "decoder", language=lang))) for lang in INSTRUCTIONS]
    assert len(set(sizes)) > 1  # the languages' prompts differ in length here
    assert frame_overhead(ref) == max(sizes)


def test_decoding_paths_give_the_same_summaries_in_order(tiny_llama) -> None:
    """Texts of mixed lengths and languages through the summarize entry point: prefix-cached,
    bucketed and continuous decoding give what plain static batches give, each text's summary in
    its place (the repeat ban keeps each row's own language's scripts)."""
    from tasks.inference.decoding import Decoding

    spec = SummarizerSpec(resolve(tiny_llama, "summarizer"), max_new_tokens=6)
    texts = [TRAINING_TEXT[i % 7][: 10 + 23 * i] for i in range(9)]
    texts[3:3] = ["东京开会了。预算讨论了。", "会议讨论了预算和遥控器的设计。"]  # a per-row ban in another language
    limits = BatchLimits(10**9, 4)
    alone = [summarize_texts(spec, [t], "cpu", decoding=Decoding())[0] for t in texts]
    assert [s.language for s in alone[3:5]] == ["zh", "zh"]
    for decoding in (
        Decoding(),
        Decoding(prefix_cache=True, buckets=True),
        Decoding(continuous=True, prefix_cache=True),
    ):
        assert summarize_texts(spec, texts, "cpu", limits=limits, decoding=decoding) == alone, decoding


def test_a_prefilled_lead_ends_the_prompt_and_begins_the_summary(tiny_llama, monkeypatch) -> None:
    import tasks.summarize.summarize as summarize
    from tasks.language import Instruction

    ref = resolve(tiny_llama, "summarizer")
    tokenizer = load_tokenizer(ref.path)
    plain = Instruction("You summarize.", "{text}\nSummarize it.")
    led = Instruction(plain.system, plain.user, "1.")
    _, after = prompt_frame(tokenizer, "decoder", prompt=plain)
    _, led_after = prompt_frame(tokenizer, "decoder", prompt=led)
    assert tokenizer.decode(led_after) == tokenizer.decode(after) + "1."
    # decoding strips the space the answer starts with: the lead gets it back, a CJK answer none
    written = iter(["The budget was approved.", "预算通过了。"])
    monkeypatch.setattr(summarize, "_decode", lambda *args: (next(written), 5, False))
    spec = SummarizerSpec(ref, max_new_tokens=4)
    english, chinese = summarize_texts(spec, ["The committee met.", "委员会开会了。"], "cpu", prompt=led)
    assert (english.raw, english.text) == ("1. The budget was approved.", "1. The budget was approved.")
    assert chinese.raw == "1.预算通过了。"
