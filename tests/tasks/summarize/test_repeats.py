"""The repeat ban keeps the script of the output: tested on the token level with a real
byte-level BPE tokenizer (the tiny model's), whose vocabulary holds Latin, Han and Kana tokens."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.inference.models import load_tokenizer
from tasks.summarize.repeats import (
    SCRIPT_CLASSES,
    allowed_scripts,
    no_repeat_in_output,
    token_script,
    vocabulary_scripts,
)


def _tokens_of(path: str, script: str, count: int) -> list[int]:
    classes = vocabulary_scripts(path)
    ids = [i for i in range(len(classes)) if SCRIPT_CLASSES[int(classes[i])] == script]
    assert len(ids) >= count, f"the test tokenizer has too few {script} tokens"
    return ids[:count]


def test_vocabulary_scripts_follow_the_decoded_tokens(tiny_llama) -> None:
    tokenizer = load_tokenizer(tiny_llama)
    classes = vocabulary_scripts(tiny_llama)
    assert len(classes) == len(tokenizer)
    for token_id in range(len(tokenizer)):
        assert SCRIPT_CLASSES[int(classes[token_id])] == token_script(tokenizer.decode([token_id]))
    assert token_script(" length") == "Latin" and token_script("长度") == "Han" and token_script("，3") == ""


def _step(path: str, ranking: list[int], languages: list[str], han: list[int]) -> int:
    """The token greedy decoding picks after Han tokens A B C A B (n=3 bans C), when the
    scores rank `ranking` first to last; one row per language."""
    import torch

    a, b, c = han[:3]
    classes = vocabulary_scripts(path)
    input_ids = torch.tensor([[a, b, c, a, b]] * len(languages))
    scores = torch.zeros((len(languages), len(classes)))
    for rank, token in enumerate(ranking):
        scores[:, token] = 10.0 - rank
    out = no_repeat_in_output(0, 3, classes, allowed_scripts(languages))(input_ids, scores)
    return [int(t) for t in out.argmax(-1)]  # type: ignore[return-value]


def test_a_ban_that_would_switch_chinese_to_latin_is_lifted(tiny_llama) -> None:
    han = _tokens_of(tiny_llama, "Han", 4)
    [latin] = _tokens_of(tiny_llama, "Latin", 1)
    c = han[2]
    # the repeat's next token C, then a Latin token, then another Han token
    chinese, english = _step(tiny_llama, [c, latin, han[3]], ["zh", "en"], han)
    assert chinese == c  # banning C would write Latin into Chinese: the repeat is kept
    assert english == latin  # in an English row Latin is its own script: the ban holds


def test_a_ban_to_a_token_of_the_same_script_or_none_holds(tiny_llama) -> None:
    han = _tokens_of(tiny_llama, "Han", 4)
    [latin] = _tokens_of(tiny_llama, "Latin", 1)
    [punct] = _tokens_of(tiny_llama, "", 1)
    c = han[2]
    assert _step(tiny_llama, [c, han[3], latin], ["zh"], han) == [han[3]]
    assert _step(tiny_llama, [c, punct, latin], ["zh"], han) == [punct]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), language=st.sampled_from(["zh", "en", "ja"]))
def test_a_ban_never_leads_to_a_script_foreign_to_the_row(tiny_llama, seed: int, language: str) -> None:
    import torch

    classes = vocabulary_scripts(tiny_llama)
    generator = torch.Generator().manual_seed(seed)
    generated = torch.randint(0, len(classes), (1, 12), generator=generator)
    generated[0, 6:10] = generated[0, 0:4]  # the output repeats itself: something is banned
    generated[0, 10:] = generated[0, 0:2]
    scores = torch.randn((1, len(classes)), generator=generator)
    unbanned = int(scores.argmax())
    out = no_repeat_in_output(0, 3, classes, allowed_scripts([language]))(generated, scores.clone())
    chosen = int(out.argmax())
    allowed = allowed_scripts([language])[0]
    assert chosen == unbanned or bool(allowed[classes[chosen]]) or classes[chosen] == classes[unbanned]
