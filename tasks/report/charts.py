"""The report's charts, drawn offline with matplotlib (Agg) into PNG bytes. Labels, reasons and
titles come from inputs: mathtext is off, so a `$` in a label is a dollar sign, not LaTeX."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tasks.report.data import DocumentView, ReportData

UNLABELLED = "(none)"
DPI = 96


@dataclass(frozen=True)
class Chart:
    key: str  # lowercase letters and dashes: the Prefect artifact's key too
    title: str
    png: bytes


def label_colours(data: ReportData) -> dict[str, Any]:
    """One colour per label, the same in every chart of the report."""
    from matplotlib import colormaps

    labels = set(data.label_mix)
    labels.update(label for _, mix in data.label_trend for label in mix)
    if data.document:
        labels.update(s.label or UNLABELLED for s in data.document.segments)
    palette = colormaps["tab10"]
    return {label: palette(i % 10) for i, label in enumerate(sorted(labels))}


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple[Any, Any, io.BytesIO]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    with plt.rc_context({"text.parse_math": False, "font.size": 9}):
        fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
        try:
            yield fig, ax, out
            fig.tight_layout()
            fig.savefig(out, format="png")
        finally:
            plt.close(fig)


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def label_mix_chart(data: ReportData, colours: dict[str, Any]) -> Chart:
    title = "Label mix of the run"
    with _figure(5, 3) as (_, ax, out):
        ax.set_title(title)
        if data.label_mix:
            labels = list(data.label_mix)
            ax.bar(labels, [data.label_mix[k] for k in labels], color=[colours[k] for k in labels])
            ax.set_ylabel("documents")
            _whole_numbers(ax.yaxis)
            ax.tick_params(axis="x", labelrotation=20)
        else:
            _empty(ax, "no document results")
    return Chart("label-mix", title, out.getvalue())


def label_trend_chart(data: ReportData, colours: dict[str, Any]) -> Chart:
    title = "Label mix over past runs"
    with _figure(7, 3) as (_, ax, out):
        ax.set_title(title)
        if data.label_trend:
            runs = [run_id[-8:] for run_id, _ in data.label_trend]
            bottom = [0] * len(runs)
            for label in sorted({k for _, mix in data.label_trend for k in mix}):
                heights = [mix.get(label, 0) for _, mix in data.label_trend]
                ax.bar(runs, heights, bottom=bottom, label=label, color=colours[label])
                bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            ax.set_ylabel("documents")
            _whole_numbers(ax.yaxis)
            ax.set_xlabel("run (last 8 characters of its id)")
            ax.tick_params(axis="x", labelrotation=30)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            _empty(ax, "no completed runs with results")
    return Chart("label-trend", title, out.getvalue())


def segment_strip_chart(document: DocumentView | None, colours: dict[str, Any]) -> Chart:
    """The document's segments along its text, coloured by label; consecutive segments sit in
    two lanes so their overlap shows."""
    title = "Segments along the text, coloured by label"
    with _figure(9, 1.9) as (_, ax, out):
        ax.set_title(title)
        if document and document.segments:
            for i, seg in enumerate(document.segments):
                label = seg.label or UNLABELLED
                lane = (i % 2) * 1.1
                ax.broken_barh([(seg.char_start, seg.char_end - seg.char_start)], (lane, 1), color=colours[label])
            ax.set_xlim(0, max(document.n_chars, max(s.char_end for s in document.segments)))
            ax.set_yticks([])
            ax.set_xlabel("character offset")
            handles = [_patch(colours[k]) for k in sorted({s.label or UNLABELLED for s in document.segments})]
            names = sorted({s.label or UNLABELLED for s in document.segments})
            ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            _empty(ax, "no labelled segments for this document")
    return Chart("segment-strip", title, out.getvalue())


def _patch(colour: Any) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour)


def stage_time_chart(data: ReportData) -> Chart:
    title = "Time per stage"
    with _figure(5, 3) as (_, ax, out):
        ax.set_title(title)
        if data.stage_seconds:
            stages = list(data.stage_seconds)
            ax.barh(stages[::-1], [data.stage_seconds[s] for s in stages[::-1]], color="#4c72b0")
            ax.set_xlabel("seconds (summed over shards)")
        else:
            _empty(ax, "no stage times recorded")
    return Chart("stage-time", title, out.getvalue())


def rejects_chart(data: ReportData) -> Chart:
    title = "Rejected inputs by reason"
    with _figure(5, 3) as (_, ax, out):
        ax.set_title(title)
        if data.rejects_by_reason:
            reasons = list(data.rejects_by_reason)[::-1]
            ax.barh(reasons, [data.rejects_by_reason[r] for r in reasons], color="#c44e52")
            ax.set_xlabel("inputs")
            _whole_numbers(ax.xaxis)
        else:
            _empty(ax, "no input was rejected")
    return Chart("rejects", title, out.getvalue())


def report_charts(data: ReportData) -> list[Chart]:
    colours = label_colours(data)
    return [
        label_mix_chart(data, colours),
        label_trend_chart(data, colours),
        segment_strip_chart(data.document, colours),
        stage_time_chart(data),
        rejects_chart(data),
    ]
