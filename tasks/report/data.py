"""What the report shows, read with SQL over the public tables through the warehouse's query
API (the same sandbox `longdoc query` uses), never from the files beneath it.

A named run is read as of its end (the lake's snapshot at that run's final commit), so the
report of a run that just ended shows it even while another run is in flight; without a name,
the latest run that ended is read at the latest snapshot inside no run's flight."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.datasets import Store
from storage.runlog import UnknownRun
from storage.warehouse import WarehouseError, query

TREND_RUNS = 20  # past runs in the label trend
DOCUMENTS_LISTED = 50  # the run's longest documents the page lists (a run may have 500k)


class ReportError(Exception):
    """The report cannot be made (no such run, no such document): one line at the CLI."""


@dataclass(frozen=True)
class Segment:
    seq: int
    char_start: int
    char_end: int
    label: str | None
    score: float | None


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    title: str
    n_chars: int
    label: str | None
    summary: str
    segments: list[Segment]


@dataclass(frozen=True)
class ReportData:
    run_id: str
    status: str
    started_at: datetime | None
    config_id: str | None
    seconds: float | None
    counts: dict[str, Any]
    stage_seconds: dict[str, float]
    label_mix: dict[str, int]  # documents per label among the run's results
    label_trend: list[tuple[str, dict[str, int]]]  # (run_id, documents per label), oldest first
    rejects_by_reason: dict[str, int]
    document: DocumentView | None
    documents: list[tuple[str, str, int]] = field(default_factory=list)  # (doc_id, title, n_chars)
    documents_total: int = 0  # the run's documents, of which `documents` lists the longest


def literal(value: str) -> str:
    """A SQL string literal: ids and titles come from users and inputs."""
    return "'" + value.replace("'", "''") + "'"


def rows(store: Store, sql: str, as_of: str | None = None) -> list[dict[str, Any]]:
    columns, found = query(store, sql, as_of=as_of)
    return [dict(zip(columns, row, strict=True)) for row in found]


def previous_documents(store: Store, run_id: str, inputs: list[str]) -> int | None:
    """Documents of the last completed run before `run_id` over the same inputs (a nightly's
    previous nightly); None when there is none."""
    found = rows(
        store,
        "SELECT counts->>'$.documents' AS documents FROM runs WHERE status = 'completed' "
        f"AND run_id <> {literal(run_id)} AND (json(parameters)->'$.inputs') = json({literal(json.dumps(inputs))}) "
        f"AND started_at < coalesce((SELECT max(started_at) FROM runs WHERE run_id = {literal(run_id)}), now()) "
        "ORDER BY started_at DESC LIMIT 1",
    )
    value = found[0]["documents"] if found else None
    return int(value) if value is not None else None


def load_report(store: Store, run_id: str | None = None, doc_id: str | None = None) -> ReportData:
    """The run (default: the latest), its label mix and trend, its rejects, and one document
    (default: the run's longest) with its segments and summary."""
    as_of = run_id  # fixed before run_id is filled in below: every read at one snapshot

    def read(sql: str) -> list[dict[str, Any]]:
        return rows(store, sql, as_of)

    where = f"WHERE run_id = {literal(run_id)}" if run_id else ""
    try:
        found = read(
            "SELECT run_id, status, started_at, config_id, seconds, counts, stage_seconds FROM runs "
            f"{where} ORDER BY started_at DESC LIMIT 1",
        )
    except WarehouseError as exc:  # a named run the lake has no end of: unknown, or still running
        if isinstance(exc.__cause__, UnknownRun):
            raise ReportError(
                f"no run {run_id} in the warehouse" if str(exc).startswith("no run") else str(exc)
            ) from exc
        raise
    if not found:
        raise ReportError(f"no run {run_id} in the warehouse" if run_id else "no runs in the warehouse yet")
    run = found[0]
    run_id, config_id = run["run_id"], run["config_id"]
    # The run's documents: those it produced results for; a run that found everything done
    # already shows the results of its configuration.
    scope = f"dr.run_id = {literal(run_id)}"
    if not read(f"SELECT 1 AS x FROM document_results dr WHERE {scope} LIMIT 1") and config_id:
        scope = f"dr.config_id = {literal(config_id)}"
    mix = read(f"SELECT label, count(*) AS n FROM document_results dr WHERE {scope} GROUP BY label ORDER BY n DESC")
    trend = read(
        "WITH recent AS (SELECT run_id, started_at FROM runs WHERE status = 'completed' "
        f"ORDER BY started_at DESC LIMIT {TREND_RUNS}) "
        "SELECT recent.run_id, recent.started_at, dr.label, count(*) AS n FROM recent "
        "JOIN document_results dr USING (run_id) GROUP BY ALL ORDER BY recent.started_at, dr.label",
    )
    rejects = read(
        f"SELECT reason, count(*) AS n FROM rejects WHERE run_id = {literal(run_id)} GROUP BY reason ORDER BY n DESC",
    )
    documents = read(
        "SELECT d.doc_id, coalesce(d.title, d.source_uri, d.doc_id) AS title, d.n_chars FROM document_results dr "
        f"JOIN documents d USING (doc_id) WHERE {scope} ORDER BY d.n_chars DESC, d.doc_id LIMIT {DOCUMENTS_LISTED}",
    )
    total = read(f"SELECT count(*) AS n FROM document_results dr WHERE {scope}")
    chosen = doc_id or (documents[0]["doc_id"] if documents else None)
    return ReportData(
        run_id=run_id,
        status=run["status"],
        started_at=run["started_at"],
        config_id=config_id,
        seconds=run["seconds"],
        counts=_json(run["counts"]),
        stage_seconds={k: float(v) for k, v in _json(run["stage_seconds"]).items() if isinstance(v, int | float)},
        label_mix={str(r["label"]): int(r["n"]) for r in mix},
        label_trend=_trend(trend),
        rejects_by_reason=_rejects_by_reason(_json(run["counts"]), rejects),
        document=_document(store, chosen, config_id, as_of) if chosen else None,
        documents=[(r["doc_id"], r["title"], int(r["n_chars"] or 0)) for r in documents],
        documents_total=int(total[0]["n"]) if total else len(documents),
    )


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _rejects_by_reason(counts: dict[str, Any], recorded: list[dict[str, Any]]) -> dict[str, int]:
    """The run's own count per reason (unchanged inputs rejected before count again, as in its
    `rejects` figure); the `rejects` rows written by the run when its counts lack them."""
    by_reason = counts.get("rejects_by_reason")
    if isinstance(by_reason, dict) and all(isinstance(n, int) for n in by_reason.values()):
        return {str(k): n for k, n in sorted(by_reason.items(), key=lambda kv: -kv[1])}
    return {str(r["reason"]): int(r["n"]) for r in recorded}


def _trend(found: list[dict[str, Any]]) -> list[tuple[str, dict[str, int]]]:
    per_run: dict[str, dict[str, int]] = {}
    for r in found:
        per_run.setdefault(r["run_id"], {})[str(r["label"])] = int(r["n"])
    return list(per_run.items())


def _document(store: Store, doc_id: str, config_id: str | None, as_of: str | None) -> DocumentView:
    config = f"AND dr.config_id = {literal(config_id)}" if config_id else ""
    found = rows(
        store,
        "SELECT d.doc_id, coalesce(d.title, d.source_uri, d.doc_id) AS title, d.n_chars, dr.label, dr.summary, "
        "dr.classifier FROM documents d LEFT JOIN document_results dr "
        f"ON dr.doc_id = d.doc_id {config} WHERE d.doc_id = {literal(doc_id)} ORDER BY dr.created_at DESC LIMIT 1",
        as_of,
    )
    if not found:
        raise ReportError(f"no document {doc_id} in the warehouse")
    doc = found[0]
    model = f"AND l.model = {literal(doc['classifier'])}" if doc["classifier"] else ""
    segments = rows(
        store,
        "SELECT s.seq, s.char_start, s.char_end, l.label, l.score FROM segments s "
        f"JOIN segment_labels l ON l.segment_id = s.segment_id {model} "
        f"WHERE s.doc_id = {literal(doc_id)} ORDER BY s.char_start, s.seq",
        as_of,
    )
    return DocumentView(
        doc_id=doc["doc_id"],
        title=str(doc["title"]),
        n_chars=int(doc["n_chars"] or 0),
        label=doc["label"],
        summary=doc["summary"] or "",
        segments=[
            Segment(int(s["seq"]), int(s["char_start"]), int(s["char_end"]), s["label"], s["score"]) for s in segments
        ],
    )
