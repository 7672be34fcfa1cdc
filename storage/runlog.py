"""Runs in the lake's snapshots: which snapshots each run made, which a reader may see.

Every commit names its run in DuckLake's commit message (`run_id`) and says in its extra info
what it was: `start` (the run's `runs` row, status running, with host and pid), `stage`
(a shard stage's rows and completion), `write` (ingest batches, evaluations) or `end` (the
run's final `runs` row). A run is in flight from its start snapshot until its end snapshot.

Readers see whole runs: the query sandbox reads at the latest snapshot that lies inside no
run's flight, so what a run wrote shows all at once, at its end. A run killed mid-way never
ends by itself: the next run started on the same host, or `longdoc rebuild`, closes it (its
`runs` row becomes failed, "interrupted"), and its committed shards become visible then; they
were usable by writers at once (completion is read at the newest snapshot).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage import lakeio
from storage.lake import LAKE, LakeRef, connect


class UnknownRun(Exception):
    """--as-of names a run the lake has no snapshot of (unknown, unfinished or expired)."""


@dataclass
class Flight:
    run_id: str
    start: int
    end: int | None = None
    host: str = ""
    pid: int = 0


def flights(con: Any) -> dict[str, Flight]:
    """Every run with a start event among the snapshots kept, by run_id."""
    rows = con.execute(
        f"SELECT snapshot_id, commit_message, commit_extra_info FROM ducklake_snapshots('{LAKE}') "
        "WHERE commit_message IS NOT NULL AND commit_message <> '' ORDER BY snapshot_id"
    ).fetchall()
    found: dict[str, Flight] = {}
    for snapshot, run_id, extra in rows:
        info = _info(extra)
        event = info.get("event")
        if event == "start":
            host, _, pid = str(info.get("writer", "")).rpartition(":")
            found[run_id] = Flight(run_id, snapshot, host=host, pid=int(pid) if pid.isdigit() else 0)
        elif event == "end" and run_id in found:
            found[run_id].end = snapshot
    return found


def _info(extra: str | None) -> dict[str, Any]:
    try:
        value = json.loads(extra or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def visible_snapshot(con: Any) -> int:
    """The latest snapshot inside no run's flight: every run it shows, it shows whole."""
    latest = int(con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0])
    spans = [(f.start, f.end) for f in flights(con).values()]
    seen = latest
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start <= seen and (end is None or seen < end):
                seen, moved = start - 1, True
    return max(seen, 0)


def run_end_snapshot(con: Any, run_id: str) -> int:
    """The snapshot at which `run_id` ended; UnknownRun when the lake keeps none."""
    rows = con.execute(
        f"SELECT snapshot_id, commit_extra_info FROM ducklake_snapshots('{LAKE}') WHERE commit_message = ?", [run_id]
    ).fetchall()
    ends = [snapshot for snapshot, extra in rows if _info(extra).get("event") == "end"]
    if ends:
        return int(max(ends))
    if rows:
        raise UnknownRun(f"run {run_id} has not ended (or its end snapshot has expired): nothing to answer as of it")
    raise UnknownRun(f"no run {run_id} in this lake (unknown, or its snapshots have expired)")


def interrupted(ref: LakeRef, any_host: bool = False) -> list[Flight]:
    """Runs in flight whose process is gone: on this host, a pid that no longer lives; with
    `any_host`, every run in flight (rebuild's choice, when the operator knows none runs)."""
    lakeio.ensure_lake(ref)
    with connect(ref, read_only=True) as con:
        open_runs = [f for f in flights(con).values() if f.end is None]
    here = socket.gethostname()
    return [f for f in open_runs if any_host or (f.host == here and f.pid != os.getpid() and not _alive(f.pid))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def begin(ref: LakeRef, row: Mapping[str, Any]) -> None:
    """Commit a run's `runs` row (status running) as its start; first close the runs of this
    host whose process died, so their shards become visible."""
    close_interrupted(ref)
    lakeio.commit(ref, {"runs": [row]}, str(row["run_id"]), event="start")


def end(ref: LakeRef, row: Mapping[str, Any]) -> None:
    """Commit a run's final `runs` row: from this snapshot on, readers see the run whole."""
    lakeio.commit(ref, {"runs": [row]}, str(row["run_id"]), event="end")


def close_interrupted(ref: LakeRef, any_host: bool = False) -> list[str]:
    """End the runs in flight whose process is gone (see `interrupted`); their ids."""
    closed = []
    for flight in interrupted(ref, any_host):
        rows = lakeio.read(ref, "runs", where={"run_id": flight.run_id}).to_pylist()
        row = rows[0] if rows else {"run_id": flight.run_id}
        reason = f"interrupted: its process ({flight.host}:{flight.pid}) ended before the run did"
        end(ref, row | {"status": "failed", "error": reason, "finished_at": lakeio.now()})
        closed.append(flight.run_id)
    return closed
