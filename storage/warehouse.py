"""The lake's faces for people: `longdoc query` (sandboxed, whole runs only, `--as-of`),
`longdoc rebuild` (recovery) and `longdoc compact` (maintenance).

A query attaches the lake read-only at one snapshot: the latest inside no run's flight
(storage/runlog.py), or the end of the run `--as-of` names. Its connection may read the lake's
data directory and nothing else (DuckDB's allowed_directories, then external access off and the
configuration locked), and the statement must pass storage/sandbox.py's checks first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from storage import lakeio, migrate, runlog, sandbox
from storage.datasets import Store
from storage.lake import LAKE, LakeError, LakeRef, attach, catalog_held, connect, new_connection, process_lock
from storage.lakeschema import VIEWS
from storage.sandbox import QueryLimits, QueryRefused, first_line


class WarehouseError(Exception):
    """A query, rebuild or compaction the lake cannot do, said in one line."""


# Library callers (tests, tools) get every row; the CLI prints at most QueryLimits().rows.
EVERY_ROW = replace(QueryLimits(), rows=0)


def _ready(store: Store) -> LakeRef:
    """The lake, made current (tables, migration); WarehouseError when there is none to read."""
    ref = LakeRef(store.root, store.catalog)  # not `store.lake`, which would make one
    try:
        if store.is_local and not Path(ref.data_path).is_dir():
            raise WarehouseError(f"no data directory at {ref.data_path.rstrip('/')}")
        if not ref.catalog_exists() and not migrate.old_layout(ref) and not migrate.has_leftovers(ref):
            raise WarehouseError(f"no lake at {ref.catalog_uri().removeprefix('ducklake:')}: run `longdoc run` first")
        migrate.open_lake(ref)
    except LakeError as exc:
        raise WarehouseError(str(exc)) from exc
    return ref


def query(
    store: Store, sql: str, limits: QueryLimits = EVERY_ROW, as_of: str | None = None
) -> tuple[list[str], list[tuple]]:
    """Run one read statement in the sandbox; returns column names and rows, at most
    `limits.rows + 1` of them when `limits.rows` is set."""
    try:
        sandbox.check_read_only(sql)  # before anything is opened
        limits.check()
    except QueryRefused as exc:
        raise WarehouseError(str(exc)) from exc
    ref = _ready(store)
    with process_lock():
        try:
            with connect(ref, read_only=True) as con:
                snapshot = runlog.run_end_snapshot(con, as_of) if as_of else runlog.visible_snapshot(con)
            con = sandboxed(ref, snapshot, limits)
        except (runlog.UnknownRun, LakeError) as exc:
            raise WarehouseError(str(exc)) from exc
        try:
            return sandbox.run(con, sql, limits)
        except QueryRefused as exc:
            raise WarehouseError(str(exc)) from exc
        finally:
            con.close()


def sandboxed(ref: LakeRef, snapshot: int, limits: QueryLimits) -> Any:
    """A connection that reads the lake at `snapshot` and reaches nothing else."""
    con = new_connection(sandbox.SETTINGS | {"memory_limit": limits.memory, "threads": limits.threads}, ref)
    try:
        with catalog_held(ref, exclusive=False):
            attach(con, ref, read_only=True, snapshot=snapshot)
        con.execute(f"USE {LAKE}")
        # DuckLake reads its data files through the file system: only its own directory is open,
        # and COPY or a write to it is refused by the statement checks before SQL runs.
        con.execute("SET allowed_directories = ?", [[ref.data_path]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except Exception:
        con.close()
        raise
    return con


@dataclass(frozen=True)
class RebuildReport:
    migrated: dict[str, int]
    runs_closed: list[str]
    missing_files: list[str]
    views: list[str]


def rebuild(store: Store, close_all_runs: bool = False) -> RebuildReport:
    """What the lake needs after a crash: the old layout migrated, tables and views made again,
    runs whose process died closed (on this host; every run in flight with `close_all_runs`),
    and every data file the catalog names checked to exist (named when missing)."""
    ref = LakeRef(store.root, store.catalog)
    try:
        lakeio.ensure_lake(ref)
        migrated = migrate.migrate_parts(ref) if migrate.old_layout(ref) or migrate.has_leftovers(ref) else {}
        closed = runlog.close_interrupted(ref, any_host=close_all_runs)
        with connect(ref) as con:
            con.execute("BEGIN")
            for name, sql in VIEWS.items():
                con.execute(f"CREATE OR REPLACE VIEW {LAKE}.{name} AS {sql}")
            con.execute("CALL lake.set_commit_message('longdoc', '', extra_info => '{\"event\": \"rebuild\"}')")
            con.execute("COMMIT")
            files: list[str] = []
            for table in _tables(con):
                files += [
                    r[0]
                    for r in con.execute(f"SELECT data_file FROM ducklake_list_files('{LAKE}', ?)", [table]).fetchall()
                ]
    except LakeError as exc:
        raise WarehouseError(str(exc)) from exc
    missing = sorted({f for f in files if ref.is_local and not Path(f).exists()})
    return RebuildReport(migrated, closed, missing, list(VIEWS))


def _tables(con: Any) -> list[str]:
    return [
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]).fetchall()
    ]


MERGED_FILE_SIZE = "4MB"


def merge_small_files(store: Store, over: int) -> dict[str, int] | None:
    """When the lake holds more than `over` data files, merge the small ones (what `compact`
    does, without expiring snapshots: `--as-of` reaches the same runs): a read by doc_id opens
    every file of its table, as no file statistic prunes hashes, so a lake left with a file per
    shard commit makes every later run's lookups slower. None when it holds `over` or fewer."""
    with _maintenance(store, "merge the lake's files") as con:
        before = _file_count(con)
        if before <= over:
            return None
        _merge_files(con)
        cleaned = _delete_unneeded_files(con)
        return {"data_files_before": before, "data_files_after": _file_count(con), "files_deleted": cleaned}


def compact(store: Store, retain: timedelta) -> dict[str, int]:
    """Merge small data files, expire snapshots older than `retain` (never one a run in flight
    began at), and delete the files no snapshot kept needs. Query results stay the same."""
    with _maintenance(store, "compact the lake") as con:
        before = _file_count(con)
        _merge_files(con)
        keep_from = _oldest_open_start(con)
        expired = con.execute(
            f"SELECT count(*) FROM ducklake_expire_snapshots('{LAKE}', older_than => "
            "least(now() - to_microseconds(?), coalesce(?::TIMESTAMPTZ, now())))",
            [int(retain.total_seconds() * 1_000_000), keep_from],
        ).fetchone()[0]
        cleaned = _delete_unneeded_files(con)
        return {
            "data_files_before": before,
            "data_files_after": _file_count(con),
            "snapshots_expired": int(expired),
            "files_deleted": cleaned,
        }


@contextmanager
def _maintenance(store: Store, what: str) -> Iterator[Any]:
    """A writing connection to the lake; its errors as one WarehouseError line."""
    ref = _ready(store)
    try:
        with connect(ref) as con:
            yield con
    except LakeError as exc:
        raise WarehouseError(str(exc)) from exc
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise WarehouseError(f"cannot {what}: {first_line(exc)}") from exc
        raise


def _merge_files(con: Any) -> None:
    # The merge's memory grows with the size of the files it writes: at the lake's default
    # target (512 MB) merging a 500k-document lake peaked at 3.3 GB, at 4 MB at 0.5 GB, and the
    # ~100 files left cost a lookup by doc_id no more than 7 do (BENCHMARKS.md).
    con.execute(f"CALL ducklake_set_option('{LAKE}', 'target_file_size', '{MERGED_FILE_SIZE}')")
    con.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')")
    con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')")


def _delete_unneeded_files(con: Any) -> int:
    return int(
        con.execute(f"SELECT count(*) FROM ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)").fetchone()[0]
    )


def _file_count(con: Any) -> int:
    return sum(
        con.execute(f"SELECT count(*) FROM ducklake_list_files('{LAKE}', ?)", [t]).fetchone()[0] for t in _tables(con)
    )


def _oldest_open_start(con: Any) -> Any:
    starts = [f.start for f in runlog.flights(con).values() if f.end is None]
    if not starts:
        return None
    row = con.execute(
        f"SELECT snapshot_time FROM ducklake_snapshots('{LAKE}') WHERE snapshot_id = ?", [min(starts)]
    ).fetchone()
    return row[0] if row else None
