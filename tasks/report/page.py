"""The report as one self-contained HTML page: inline CSS, charts as base64 PNG, no script, no
external font or image, so it opens without a network. Every string from the data (titles,
labels, summaries, ids, reasons) is HTML-escaped."""

from __future__ import annotations

import base64
from html import escape

from tasks.report.charts import Chart
from tasks.report.data import DOCUMENTS_LISTED, ReportData

PAGE_TITLE = "longdoc run report"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 8px}
.meta{color:#555;font-size:13px} .grid{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figcaption{font-size:12px;color:#555} img{display:block;max-width:100%}
.doc{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.summary{flex:1 1 280px;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;
white-space:pre-wrap;font-size:13px;max-height:360px;overflow:auto}
table{border-collapse:collapse;font-size:12px;background:#fff}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left} code{font-size:12px}
"""


def _img(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img alt="{escape(chart.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(chart.title)}</figcaption></figure>"
    )


def report_html(data: ReportData, charts: list[Chart]) -> str:
    by_key = {c.key: c for c in charts}
    counts = data.counts
    started = data.started_at.strftime("%Y-%m-%d %H:%M UTC") if data.started_at else "?"
    seconds = f"{data.seconds:.1f} s" if data.seconds is not None else "?"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(PAGE_TITLE)} {escape(data.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(PAGE_TITLE)}</h1>",
        f"<p class='meta'>run <code>{escape(data.run_id)}</code> · {escape(data.status)} · started {escape(started)}"
        f" · {escape(seconds)} · config <code>{escape(data.config_id or '-')}</code> · documents "
        f"{escape(str(counts.get('documents', '?')))} · rejected {escape(str(counts.get('rejects', '?')))}</p>",
        "<h2>Labels</h2><div class='grid'>",
        *(_img(by_key[k]) for k in ("label-mix", "label-trend") if k in by_key),
        "</div>",
        _document_section(data, by_key.get("segment-strip")),
        "<h2>Time and rejects</h2><div class='grid'>",
        *(_img(by_key[k]) for k in ("stage-time", "rejects") if k in by_key),
        "</div>",
        _documents_table(data),
        "</body></html>",
    ]
    return "\n".join(parts)


def _document_section(data: ReportData, strip: Chart | None) -> str:
    doc = data.document
    if doc is None:
        return "<h2>Document</h2><p class='meta'>The run has no document results.</p>"
    return (
        f"<h2>Document: {escape(doc.title)}</h2>"
        f"<p class='meta'>doc_id <code>{escape(doc.doc_id)}</code> · {doc.n_chars:,} characters · "
        f"{len(doc.segments)} labelled segments · label <strong>{escape(doc.label or '-')}</strong></p>"
        f"<div class='doc'>{_img(strip) if strip else ''}"
        f"<div class='summary'><strong>Summary</strong>\n{escape(doc.summary or '(no summary)')}</div></div>"
    )


def _documents_table(data: ReportData) -> str:
    if not data.documents:
        return ""
    shown = data.documents[:DOCUMENTS_LISTED]
    rows = "".join(
        f"<tr><td><code>{escape(doc_id)}</code></td><td>{escape(title)}</td><td>{n:,}</td></tr>"
        for doc_id, title, n in shown
    )
    total = max(data.documents_total, len(data.documents))
    more = f"<p class='meta'>{total - len(shown)} more not listed.</p>" if total > len(shown) else ""
    return (
        "<h2>Documents of the run</h2>"
        "<p class='meta'>Another document: <code>longdoc report RUN_ID --doc-id DOC_ID</code></p>"
        f"<table><tr><th>doc_id</th><th>title</th><th>characters</th></tr>{rows}</table>{more}"
    )
