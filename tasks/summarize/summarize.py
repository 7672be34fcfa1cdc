"""Summarize: a short summary of every segment, batched greedy generation.

Seq2seq models (BART, T5, Pegasus) read the text alone; instruct decoders get their own chat
template: a system message, the text between delimiters, and the instruction after it (asked
before the text, a small model tends to continue the text instead of summarizing it), both in
the language of the segment's text (tasks/summarize/language.py; stored as `language`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.datasets import Store
from tasks.inference.decoding import Decoding, Generation
from tasks.inference.engine import (
    CANCELLATION,
    BatchLimits,
    Cancellation,
    Progress,
    inference,
    pad_batch,
    run_batched,
    shifted,
)
from tasks.inference.engines import DEFAULT_ENGINE, check_engine, decoder_tokens, generation_config
from tasks.inference.frames import special_frame
from tasks.inference.models import ModelRef, load_model, load_tokenizer
from tasks.inference.worker import plain_backend
from tasks.language import (
    DEFAULT_LANGUAGE,
    INSTRUCTIONS,
    Instruction,
    detect,
    instruction,
    prompt_fingerprint,
)
from tasks.prose import prose_issues, repair_summary
from tasks.summarize.repeats import allowed_scripts, no_repeat_in_output, vocabulary_scripts
from tasks.summarize.sentence_filter import evidence_rows, filter_summary, sentence_columns, sentence_counts
from tasks.tables import pending_segments

# 5: the instruction in the text's language (tasks/language.py), a script-keeping repeat ban
# (tasks/summarize/repeats.py), and only checked sentences stored, with their evidence
# (sentence_filter.py); the wording itself is fingerprinted into model_id. 7: a prefilled
# content-first lead, and the filter says a transcript's topic sentences of the meeting.
PROMPT_VERSION = "7"
_MARKER = "\x00LONGDOC_TEXT\x00"
DEFAULT_MAX_NEW_TOKENS = 80
NO_REPEAT_NGRAM = 4
DEFAULT_SUMMARY_SEGMENT_TOKENS = 1024
Prompt = tuple[str, str] | Instruction  # a benchmark's own (system, user) or a whole instruction


@dataclass(frozen=True)
class SummarizerSpec:
    ref: ModelRef
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    engine: str = DEFAULT_ENGINE  # how it runs, not what it writes: not part of model_id

    @property
    def model_id(self) -> str:
        return f"{self.ref.short_id}:p{PROMPT_VERSION}.{prompt_fingerprint()}-n{self.max_new_tokens}"

    @property
    def max_input_tokens(self) -> int:
        """What one prompt may hold so that prompt plus summary fit the model's context."""
        if self.ref.kind == "decoder":
            return self.ref.max_input_tokens - self.max_new_tokens
        return self.ref.max_input_tokens


def prompt_frame(
    tokenizer: Any,
    kind: str,
    model_type: str = "",
    prompt: Prompt | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> tuple[list[int], list[int]]:
    """The token ids the model sees before and after the text of a segment; `prompt` is a
    (system, user) pair or an Instruction for decoders, the segment prompt in `language` when
    None. An instruction's lead (the assistant's first words) ends the frame."""
    if kind == "decoder":
        own = _instruction(prompt, language)
        messages = [
            {"role": "system", "content": own.system},
            {"role": "user", "content": own.user.format(text=_MARKER)},
        ]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        before, after = (rendered + own.lead).split(_MARKER)
        encode = tokenizer(before, add_special_tokens=False)["input_ids"]
        return list(encode), list(tokenizer(after, add_special_tokens=False)["input_ids"])
    # seq2seq: the tokenizer's own special tokens around the text (and T5's task prefix)
    return special_frame(tokenizer, "summarize: " if model_type == "t5" else "")


def _instruction(prompt: Prompt | None, language: str) -> Instruction:
    if prompt is None:
        return instruction(language)
    return prompt if isinstance(prompt, Instruction) else Instruction(*prompt)


def frame_overhead(ref: ModelRef) -> int:
    """The most tokens a prompt adds to a segment's text, over every language's prompt (segments
    are cut before their language is known)."""
    tokenizer = load_tokenizer(ref.path)
    frames = [prompt_frame(tokenizer, ref.kind, _model_type(ref), language=lang) for lang in INSTRUCTIONS]
    return max(len(before) + len(after) for before, after in frames)


def _model_type(ref: ModelRef) -> str:
    import json
    from pathlib import Path

    return str(json.loads((Path(ref.path) / "config.json").read_text()).get("model_type", ""))


@dataclass(frozen=True)
class Summary:
    text: str
    n_input_tokens: int
    n_output_tokens: int
    truncated_tokens: int
    hit_max_new_tokens: bool
    raw: str = ""  # the model's output before the repair
    language: str = DEFAULT_LANGUAGE


def summarize_texts(
    spec: SummarizerSpec,
    texts: Sequence[str],
    device: str,
    progress: Progress | None = None,
    limits: BatchLimits | None = None,
    static_cache: bool = False,
    prompt: Prompt | None = None,
    cancel: Cancellation = CANCELLATION,
    decoding: Decoding | None = None,
    engine: str | None = None,
) -> list[Summary]:
    """One summary per text, in order; greedy decoding, batched by token budget.

    `static_cache` lets transformers compile the decoding step (measured in benchmarks/);
    `decoding` (the device's own when None) and `engine` pick how a decoder generates
    (tasks/inference/decoding.py, engines.py). A cancellation ends generation at the next
    decode step and raises Cancelled."""
    engine = check_engine(engine or spec.engine)  # an engine that cannot run fails before any model loads
    tokenizer = load_tokenizer(spec.ref.path)
    # vLLM loads the weights itself: a transformers copy would only hold GPU memory
    model = (
        None if engine == "vllm" and spec.ref.kind == "decoder" else load_model(spec.ref.path, spec.ref.kind, device)
    )
    decoder = spec.ref.kind == "decoder"
    languages = [detect(text) for text in texts]
    asked = {lang: _instruction(prompt, lang) for lang in set(languages)}  # a text's own prompt and lead
    frames = {own: prompt_frame(tokenizer, spec.ref.kind, _model_type(spec.ref), own) for own in set(asked.values())}
    rows, truncated = [], []
    # the worker's plain copy: a per-call split_special_tokens would set it on the shared tokenizer
    encoded = [e.ids for e in plain_backend(tokenizer).encode_batch(list(texts), add_special_tokens=False)]
    for ids, lang in zip(encoded, languages, strict=True):
        before, after = frames[asked[lang]]
        room = spec.max_input_tokens - len(before) - len(after)
        truncated.append(max(0, len(ids) - room))
        rows.append(before + list(ids[:room]) + after)
    eos = _eos_ids(model.generation_config if model is not None else generation_config(spec.ref.path), tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    scripts = vocabulary_scripts(spec.ref.path)

    def bans(batch: list[int], start: int) -> list[Any]:
        """The repeat ban of the rows `batch` (indices into texts, one per row of the batch,
        bucket copies included), each row keeping its own language's scripts; every decoding
        path applies these same processors, so greedy outputs do not depend on the path."""
        return [no_repeat_in_output(start, NO_REPEAT_NGRAM, scripts, allowed_scripts([languages[i] for i in batch]))]

    def run(batch: list[int]) -> list[tuple[str, int, bool]]:
        ids, mask = pad_batch([rows[i] for i in batch], pad_id, left=decoder)
        with inference(device):
            assert model is not None
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=spec.max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=pad_id,
                eos_token_id=eos,
                logits_processor=bans(batch, ids.shape[1] if decoder else 1),
                stopping_criteria=[stop_on(cancel)],
                **({"cache_implementation": "static"} if static_cache else {}),
            )
        new = out[:, ids.shape[1] :] if decoder else out[:, 1:]  # seq2seq starts with its start token
        return [_decode(tokenizer, row.tolist(), eos, pad_id) for row in new.cpu()]

    limits = limits or BatchLimits.for_device(device, generation=True)
    lengths = [len(r) + spec.max_new_tokens for r in rows]
    if decoder:  # tokens from the engine, then the same decoding into text
        gen = Generation(
            model,
            pad_id,
            eos,
            spec.max_new_tokens,
            bans,
            cancel,
            [stop_on(cancel)],
        )
        new_tokens = decoder_tokens(
            gen, spec.ref.path, rows, lengths, limits, device, decoding, engine, static_cache, progress
        )
        outputs = [_decode(tokenizer, tokens, eos, pad_id) for tokens in new_tokens]
    else:
        outputs = run_batched(lengths, run, limits, progress, cancel)
    # The prefilled lead is part of the answer. Repaired right away against the text it
    # summarizes: no speaker tag of that text, no template remnant, no repeated sentence (what a
    # repair cannot fix is counted later).
    leads = [asked[lang].lead if decoder else "" for lang in languages]
    answers = [_after_lead(lead, text) for lead, (text, _, _) in zip(leads, outputs, strict=True)]
    return [
        Summary(repair_summary(answer, source), len(row), n_out, cut, hit, answer, lang)
        for answer, (_, n_out, hit), row, cut, source, lang in zip(
            answers, outputs, rows, truncated, texts, languages, strict=True
        )
    ]


def _after_lead(lead: str, text: str) -> str:
    """The answer with its prefilled lead: decoding strips the space a word after it begins with."""
    spaced = lead and text and lead[-1].isascii() and not lead[-1].isspace() and text[0].isascii() and text[0].isalnum()
    return f"{lead} {text}" if spaced else lead + text


def stop_on(cancel: Cancellation) -> Any:
    """A stopping criterion that ends every row once a cancellation is requested: one long
    batch of generation takes minutes, a decode step milliseconds (run_batched then raises)."""
    import torch
    from transformers import StoppingCriteria

    class StopOnCancel(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            stop = torch.full((input_ids.shape[0],), cancel.requested, dtype=torch.bool, device=input_ids.device)
            return stop  # type: ignore[return-value]

    return StopOnCancel()


def _eos_ids(config: Any, tokenizer: Any) -> list[int]:
    configured = config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _decode(tokenizer: Any, ids: list[int], eos: list[int], pad_id: int) -> tuple[str, int, bool]:
    """Summary text (whole sentences), output token count, and whether generation hit its limit."""
    end = next((n for n, t in enumerate(ids) if t in eos), None)
    kept = ids[:end] if end is not None else [t for t in ids if t != pad_id]
    text = tokenizer.decode(kept, skip_special_tokens=True).strip()
    if end is None:  # cut off by max_new_tokens: keep whole sentences when there is one
        last = max(text.rfind(mark) for mark in ".!?。！？")  # Chinese ends too: a cut Chinese sentence goes
        if last > 0:
            text = text[: last + 1]
    return text, len(kept), end is None


def checked_rows(
    segments: list[dict[str, Any]], summaries: list[Summary], model: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """segment_summaries rows (each summary's checked sentences, its raw output and what was
    removed) and summary_evidence rows, for segments (segment_id, doc_id, char_start, text)."""
    rows, evidence = [], []
    for seg, s in zip(segments, summaries, strict=True):
        checked = filter_summary(s.text, seg["text"], seg["char_start"])
        rows.append(
            {
                "segment_id": seg["segment_id"],
                "model": model,
                "doc_id": seg["doc_id"],
                "n_input_tokens": s.n_input_tokens,
                "n_output_tokens": s.n_output_tokens,
                "truncated_tokens": s.truncated_tokens,
                "hit_max_new_tokens": s.hit_max_new_tokens,
                "language": s.language,
                **sentence_columns(checked, s.raw),
            }
        )
        evidence += evidence_rows(checked, seg, model)
    return rows, evidence


def summarize_segments(
    store: Store,
    spec: SummarizerSpec,
    doc_ids: list[str],
    segmenter_id: str,
    part: str,
    device: str,
    progress: Progress | None = None,
    chunk_rows: int = 512,
) -> dict[str, int]:
    """Summarize every segment of these documents not yet summarized by this summarizer, a
    chunk at a time, so memory stays flat. A summary keeps only its sentences that state the
    segment's content with support in it (sentence_filter.py); the span of each goes to
    summary_evidence, held with the summaries and committed with them when the stage ends."""
    total, chunks = pending_segments(store, segmenter_id, doc_ids, "segment_summaries", spec.model_id, chunk_rows)
    counts = dict.fromkeys(
        (
            "segments_summarized",
            "summarize_input_tokens",
            "summarize_output_tokens",
            "summarize_truncated_tokens",
            "segment_summaries_unclean",  # failing the clean-prose checks after repair: tasks/prose.py
            *sentence_counts([]),
        ),
        0,
    )
    for chunk in chunks:
        done = counts["segments_summarized"]
        summaries = summarize_texts(spec, [r["text"] for r in chunk], device, shifted(progress, done, total))
        rows, evidence = checked_rows(chunk, summaries, spec.model_id)
        store.add("summary_evidence", evidence)
        store.add("segment_summaries", rows)
        counts["segments_summarized"] += len(rows)
        counts["summarize_input_tokens"] += sum(s.n_input_tokens for s in summaries)
        counts["summarize_output_tokens"] += sum(s.n_output_tokens for s in summaries)
        counts["summarize_truncated_tokens"] += sum(s.truncated_tokens for s in summaries)
        counts["segment_summaries_unclean"] += sum(
            bool(prose_issues(r["summary"], seg["text"])) for seg, r in zip(chunk, rows, strict=True)
        )
        for name, n in sentence_counts(rows).items():
            counts[name] += n
    return counts
