"""Summarize stage: reads `segments` without a summary for the model; writes `segment_summaries`
(prompts and generation in `summarize`; the repair of a summary's prose is shared: tasks/prose.py)."""

from tasks.summarize.summarize import SummarizerSpec, summarize_segments

__all__ = ["SummarizerSpec", "summarize_segments"]
