"""The repeat ban of summary generation, kept from changing the summary's language.

Small models loop ("I'm sorry, I'm sorry, ..."), so generation bans repeating an n-gram of its
own output. A ban alone forced English words into Qwen's Chinese (issue 17: "上下文 length升级"):
a Chinese phrase said twice had its next token banned, and the best token left was English. So
a ban holds only when the token it leads to is of a script the row's language is written in, of
no script at all (digits, punctuation, spaces, partial UTF-8 bytes) or of the banned token's own
script; otherwise that row keeps its unbanned scores for that step and repeats the phrase (the
repair of tasks/prose.py drops a sentence said twice). Decoding is greedy, so "leads to" is the
argmax. Reads and writes no table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.inference.worker import per_worker
from tasks.language import LANGUAGES, script_counts, scripts_of_language

# Index 0 is "no script"; the others follow the language table's scripts.
SCRIPT_CLASSES: tuple[str, ...] = ("", *sorted(LANGUAGES))


def token_script(text: str) -> str:
    """The script of a token's text: its most frequent letters' script, "" when it has none."""
    counts = script_counts(text)
    return max(counts, key=lambda s: (counts[s], s)) if counts else ""


@per_worker
def vocabulary_scripts(path: str) -> Any:
    """Per token id of the tokenizer at `path`, the index of its script in SCRIPT_CLASSES (an
    int64 tensor on the CPU): ~2 s once per worker for a 150k vocabulary."""
    import torch

    from tasks.inference.models import load_tokenizer

    tokenizer = load_tokenizer(path)
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    index = {name: k for k, name in enumerate(SCRIPT_CLASSES)}
    return torch.tensor([index[token_script(t)] for t in texts], dtype=torch.long)


def allowed_scripts(languages: Sequence[str]) -> Any:
    """Per row, which script classes a ban may lead to (a bool tensor, rows x classes)."""
    import torch

    allowed = torch.zeros((len(languages), len(SCRIPT_CLASSES)), dtype=torch.bool)
    allowed[:, 0] = True
    for row, language in enumerate(languages):
        for script in scripts_of_language(language):
            allowed[row, SCRIPT_CLASSES.index(script)] = True
    return allowed


def no_repeat_in_output(start: int, n: int, token_scripts: Any = None, allowed: Any = None) -> Any:
    """A logits processor that bans repeating any n-gram within the generated text only
    (transformers' no_repeat_ngram_size also bans the prompt's n-grams, which would stop a
    summary from quoting its source). With `token_scripts` (vocabulary_scripts) and `allowed`
    (allowed_scripts, one row per batch row) a ban never changes the script written."""
    import torch
    from transformers import LogitsProcessor

    class NoRepeatInOutput(LogitsProcessor):
        # Vectorized on the scores' device: a per-row Python loop would cost a device sync and
        # milliseconds per step, more than the model's own decode step on a GPU.
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            generated = input_ids[:, start:]
            if generated.shape[1] < n:
                return scores
            windows = generated.unfold(1, n, 1)  # (rows, windows, n)
            prefix = generated[:, generated.shape[1] - n + 1 :].unsqueeze(1)
            repeats = (windows[:, :, : n - 1] == prefix).all(-1)
            banned = torch.zeros(scores.shape, dtype=torch.int32, device=scores.device)
            banned.scatter_add_(1, windows[:, :, n - 1], repeats.to(torch.int32))
            if token_scripts is None or allowed is None:
                scores.masked_fill_(banned > 0, -float("inf"))
                return scores
            classes = token_scripts.to(scores.device)
            if classes.shape[0] < scores.shape[-1]:  # a model's vocabulary may be padded past its tokenizer's
                classes = torch.cat([classes, classes.new_zeros(scores.shape[-1] - classes.shape[0])])
            before = classes[scores.argmax(-1)]
            after_scores = scores.masked_fill(banned > 0, -float("inf"))
            after = classes[after_scores.argmax(-1)]
            keeps_script = allowed.to(scores.device).gather(1, after.unsqueeze(1)).squeeze(1) | (after == before)
            kept = torch.where(keeps_script.unsqueeze(1), after_scores, scores)
            return kept  # type: ignore[return-value]

    return NoRepeatInOutput()
