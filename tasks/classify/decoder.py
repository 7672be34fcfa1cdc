"""Zero-shot classification on an instruct decoder: the likelihood of each label as the answer.

Each segment becomes one chat prompt in the segment's language (the text, then "which of these
labels fits it?" with the labels listed), and the answer is scored for every label: the label's
tokens and the end-of-turn token after them, as the assistant's reply. No generation.

One forward pass per batch: a row holds the prompt once and every label's answer after it
(prefix sharing). A 4-D attention mask lets each answer see the prompt and its own earlier
tokens but no other answer, and each answer's positions continue from the prompt's end, so
a row computes exactly what K separate prompt+answer rows would, for the prompt's cost plus
the answers' few tokens. Rows are left-padded, so the answers sit in the same last columns of
every row and only those positions go through the (150k-wide) output layer.

An answer scores the summed log-probability of its tokens, not their mean: the labels are listed
in the prompt, so once an answer's first token is chosen its other tokens are copied at almost
no cost, and a mean would favour the labels with more tokens (a long discipline name over
历史学). Measured (benchmarks/zh_labels_bench.py, BENCHMARKS.md) with Chinese labels: sum 14/15
vs mean 12/15 single abstracts, 5/5 vs 3/5 joined documents; equal elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tasks.inference.engine import BatchLimits, Progress, inference, pad_batch, run_batched
from tasks.inference.models import ModelRef, load_model, load_tokenizer
from tasks.inference.worker import plain_backend
from tasks.language import detect_language

DECODER_PROMPT_VERSION = "1"
Reduce = Literal["mean", "sum"]
DEFAULT_REDUCE: Reduce = "sum"
# A decoder's own context is far longer than a classifier needs, and the mask grows with its square.
DECODER_SEGMENT_TOKENS = 1024

PROMPTS = {  # (user message with {text} and {labels}, separator between labels)
    "en": (
        'Text:\n"""\n{text}\n"""\n\nWhich of these labels fits the text above best: {labels}?\n'
        "Answer with the label only.",
        ", ",
    ),
    "zh": ('文本：\n"""\n{text}\n"""\n\n下列哪个标签最符合上文：{labels}？\n只回答标签。', "、"),
}
# The default labels (tasks/classify/classify.py) in the languages there are prompts for: a
# Chinese prompt lists Chinese names; the stored label is always the name the user knows.
TRANSLATED_LABELS = {
    "zh": {
        "business": "商业",
        "technology": "技术",
        "science": "科学",
        "politics": "政治",
        "education": "教育",
        "health": "健康",
        "law": "法律",
        "culture": "文化",
    }
}
_MARKER = "\x00LONGDOC_TEXT\x00"


def decoder_model_id(ref: ModelRef, labels: Sequence[str], reduce: Reduce = DEFAULT_REDUCE) -> str:
    """The `model` column of labels from this decoder: the prompts, labels and reduction shape
    every score, so any change is a changed model."""
    parts = (DECODER_PROMPT_VERSION, reduce, repr(sorted(PROMPTS.items())), repr(TRANSLATED_LABELS), *labels)
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:8]
    return f"{ref.short_id}:lm-zero-shot-{digest}"


def label_names(labels: Sequence[str], language: str) -> list[str]:
    """The labels as the prompt in `language` shows them: translated defaults, else as given."""
    table = TRANSLATED_LABELS.get(language, {})
    return [table.get(label, label) for label in labels]


@dataclass(frozen=True)
class Frame:
    """Token ids of one prompt language: before and after the text, and each label's answer."""

    before: list[int]
    after: list[int]
    answers: list[list[int]]


def make_frame(tokenizer: Any, labels: Sequence[str], language: str) -> Frame:
    user, separator = PROMPTS[language]
    shown = label_names(labels, language)
    content = user.format(text=_MARKER, labels=separator.join(shown))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    before, after = prompt.split(_MARKER)
    # What the template writes after an assistant reply: its first token ends the answer.
    reply = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _MARKER}], tokenize=False
    )
    end = encode(tokenizer, reply.split(_MARKER)[1])[:1]
    return Frame(encode(tokenizer, before), encode(tokenizer, after), [encode(tokenizer, s) + end for s in shown])


def decoder_overhead(tokenizer: Any, labels: Sequence[str]) -> int:
    """The tokens a segment's prompt adds around its text, in the longest prompt language."""
    frames = [make_frame(tokenizer, labels, lang) for lang in PROMPTS]
    return max(len(f.before) + len(f.after) + sum(map(len, f.answers)) for f in frames)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Template text, whose special tokens are meant: the tokenizer's own call."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class AnswerScores:
    """Per label, the sum of its answer's token log-probabilities and its token count."""

    sums: list[float]
    lengths: list[int]
    n_input_tokens: int
    truncated_tokens: int
    language: str

    def probabilities(self, labels: Sequence[str], reduce: Reduce = DEFAULT_REDUCE) -> dict[str, float]:
        """Softmax over the labels of each answer's summed (or mean) log-probability."""
        import math

        values = [s / n if reduce == "mean" else s for s, n in zip(self.sums, self.lengths, strict=True)]
        top = max(values)
        weights = [math.exp(v - top) for v in values]
        total = sum(weights)
        return {label: w / total for label, w in zip(labels, weights, strict=True)}


def packed_inputs(prompts: Sequence[list[int]], answers: list[list[int]], pad_id: int, dtype: Any) -> Any:
    """Input ids, position ids and the additive 4-D mask of left-padded rows, each one prompt
    followed by every answer; each answer sees the prompt and itself only."""
    import torch

    tail = sum(len(a) for a in answers)
    ids, _ = pad_batch([list(p) + [t for a in answers for t in a] for p in prompts], pad_id, left=True)
    rows, width = ids.shape
    start = width - tail  # where the answers begin, the same in every row
    allowed = torch.zeros((rows, width, width), dtype=torch.bool)
    positions = torch.zeros((rows, width), dtype=torch.long)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    for row, prompt in enumerate(prompts):
        first = start - len(prompt)
        allowed[row, first:start, first:start] = causal[: len(prompt), : len(prompt)]
        positions[row, first:start] = torch.arange(len(prompt))
        offset = start
        for answer in answers:
            end = offset + len(answer)
            allowed[row, offset:end, first:start] = True
            allowed[row, offset:end, offset:end] = causal[: len(answer), : len(answer)]
            positions[row, offset:end] = torch.arange(len(prompt), len(prompt) + len(answer))
            offset = end
        allowed[row, :first, :first] = torch.eye(first, dtype=torch.bool)  # padding sees itself: no empty rows
    mask = torch.zeros((rows, 1, width, width), dtype=dtype)
    mask.masked_fill_(~allowed.unsqueeze(1), torch.finfo(dtype).min)
    return ids, positions, mask


def answer_log_probs(logits: Any, answers: list[list[int]]) -> Any:
    """(rows, labels) summed log-probabilities from the logits of the last 1 + tail positions:
    the prompt's last token predicts each answer's first token, an answer's tokens the next."""
    import torch

    log_probs = torch.log_softmax(logits.float(), dim=-1)
    sums = []
    offset = 1  # column 0 is the prompt's last position
    for answer in answers:
        total = log_probs[:, 0, answer[0]]
        for j in range(1, len(answer)):
            total = total + log_probs[:, offset + j - 1, answer[j]]
        sums.append(total)
        offset += len(answer)
    return torch.stack(sums, dim=1)


def score_answers(
    ref: ModelRef,
    labels: Sequence[str],
    texts: Sequence[str],
    device: str,
    progress: Progress | None = None,
    limits: BatchLimits | None = None,
) -> list[AnswerScores]:
    """Every label's answer scored for every text, in one forward pass per batch."""
    tokenizer = load_tokenizer(ref.path)
    model = load_model(ref.path, ref.kind, device)
    languages = [detect_language(t) for t in texts]
    frames = {lang: make_frame(tokenizer, labels, lang) for lang in sorted(set(languages))}
    encoded = [e.ids for e in plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)]
    prompts, truncated = [], []
    for ids, lang in zip(encoded, languages, strict=True):
        frame = frames[lang]
        room = max(1, ref.max_input_tokens - len(frame.before) - len(frame.after) - sum(map(len, frame.answers)))
        truncated.append(max(0, len(ids) - room))
        prompts.append(frame.before + list(ids[:room]) + frame.after)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    dtype = next(model.parameters()).dtype

    def run(batch: list[int]) -> list[list[float]]:
        # A batch holds one language's rows at a time: their answers are the same tokens.
        out: dict[int, list[float]] = {}
        for lang in sorted({languages[i] for i in batch}):
            rows = [i for i in batch if languages[i] == lang]
            answers = frames[lang].answers
            ids, positions, mask = packed_inputs([prompts[i] for i in rows], answers, pad_id, dtype)
            with inference(device):
                logits = model(
                    input_ids=ids.to(device),
                    position_ids=positions.to(device),
                    attention_mask=mask.to(device),
                    logits_to_keep=1 + sum(map(len, answers)),
                ).logits
                sums = answer_log_probs(logits, answers).cpu().tolist()
            out.update(zip(rows, sums, strict=True))
        return [out[i] for i in batch]

    tail = max(sum(map(len, f.answers)) for f in frames.values()) if frames else 0
    limits = limits or BatchLimits.for_device(device, generation=False)
    sums = run_batched([len(p) + tail for p in prompts], run, limits, progress)
    return [
        AnswerScores(s, [len(a) for a in frames[lang].answers], len(p), cut, lang)
        for s, p, cut, lang in zip(sums, prompts, truncated, languages, strict=True)
    ]
