"""The DuckDB warehouse: a queryable catalogue loaded from the Parquet datasets.

Writers never touch the live file: they copy it, upsert the part files not loaded yet, and
atomically rename the copy over it. A reader therefore always opens a complete snapshot, and
`rebuild` can recreate the whole file from Parquet at any time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from storage import sandbox
from storage.datasets import Store
from storage.parts import SkippedPart
from storage.sandbox import QueryLimits, QueryRefused, first_line
from storage.schema import JSON_COLUMNS, KEYS, SCHEMAS

log = logging.getLogger("longdoc.storage")

WAREHOUSE_FILE = "warehouse.duckdb"

_DUCK_TYPES = {
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}

VIEWS = {
    # One row per document: its latest result with where it came from.
    "document_overview": """
        SELECT d.doc_id, d.title, d.source_uri, d.format, d.n_chars,
               r.label, r.label_score, r.summary, r.n_segments, r.classifier, r.summarizer,
               r.config_id, r.run_id, r.created_at
        FROM documents d
        LEFT JOIN (
            SELECT * FROM document_results
            QUALIFY row_number() OVER (PARTITION BY doc_id ORDER BY created_at DESC) = 1
        ) r USING (doc_id)
    """,
    # How many documents each run labelled with each label.
    "label_counts": """
        SELECT run_id, config_id, label, count(*) AS n_documents
        FROM document_results GROUP BY ALL
    """,
}


class WarehouseError(Exception):
    """A query the warehouse cannot answer, said in one line."""


def warehouse_path(store: Store) -> Path:
    return store.local_path(WAREHOUSE_FILE)


def _columns(table: str) -> list[str]:
    json_cols = JSON_COLUMNS.get(table, ())
    return [f'"{f.name}" {"JSON" if f.name in json_cols else _DUCK_TYPES[str(f.type)]}' for f in SCHEMAS[table]]


def _ddl(table: str) -> str:
    key = ", ".join(KEYS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(_columns(table))}, PRIMARY KEY ({key}))"


def _create(con: Any) -> None:
    have = set(con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall())
    tables = {table for table, _ in have}
    for table, schema in SCHEMAS.items():
        con.execute(_ddl(table))
        for field, column in zip(schema, _columns(table), strict=True):
            if table in tables and (table, field.name) not in have:
                # A warehouse made before this column was added to the schema (added at the end).
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    con.execute("CREATE TABLE IF NOT EXISTS _loaded_parts (part VARCHAR PRIMARY KEY)")
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def _new_part_files(store: Store, table: str, loaded: set[str]) -> list[pafs.FileInfo]:
    base = store.fs_and_base[1]
    return [info for info in store.part_files(table) if info.path[len(base) :] not in loaded]


def _load_new_parts(con: Any, store: Store) -> dict[str, int]:
    """Upsert every usable part file not loaded yet; returns the rows added per table. A part
    that does not match its table is skipped (named in a warning) and tried again next time."""
    added: dict[str, int] = {}
    loaded = {row[0] for row in con.execute("SELECT part FROM _loaded_parts").fetchall()}
    fs, base = store.fs_and_base
    for table in SCHEMAS:
        new, _ = store.usable_parts(table, _new_part_files(store, table, loaded))
        incoming, new = _read_parts(fs, table, new)
        if not new:
            continue
        before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.register("incoming", incoming)
        verb = "INSERT OR REPLACE" if table == "runs" else "INSERT OR IGNORE"
        con.execute(f"{verb} INTO {table} SELECT * FROM incoming")
        con.unregister("incoming")
        after = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        added[table] = after - before
        con.executemany("INSERT OR IGNORE INTO _loaded_parts VALUES (?)", [[p[len(base) :]] for p in new])
    return added


def _read_parts(fs: pafs.FileSystem, table: str, paths: list[str]) -> tuple[Any, list[str]]:
    """The rows of `paths` and the paths they came from. A part whose footer passed the check
    but whose data cannot be read is found by reading the parts one by one, and skipped."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    def read(some: list[str]) -> pa.Table:
        return pads.dataset(some, schema=SCHEMAS[table], format="parquet", filesystem=fs).to_table()

    try:
        return (read(paths) if paths else None), paths
    except (pa.ArrowException, OSError):
        pass
    tables, good = [], []
    for path in paths:
        try:
            tables.append(read([path]))
            good.append(path)
        except (pa.ArrowException, OSError) as exc:
            log.warning("longdoc: warning: skipped part file %s of table %s: %s", path, table, first_line(exc))
    return (pa.concat_tables(tables) if tables else SCHEMAS[table].empty_table()), good


def skipped_parts(store: Store) -> list[SkippedPart]:
    """The part files a load of the warehouse skips now: not loaded, and not matching their
    table (each check is cached, so the load that follows reads no footer twice)."""
    import duckdb

    loaded: set[str] = set()
    path = warehouse_path(store)
    with contextlib.suppress(duckdb.Error):  # none yet, or damaged: every part is new then
        con = duckdb.connect(str(path), read_only=True) if path.exists() else None
        if con is not None:
            with contextlib.closing(con):
                loaded = {row[0] for row in con.execute("SELECT part FROM _loaded_parts").fetchall()}
    with _environment(store, path):
        return [
            part for table in SCHEMAS for part in store.usable_parts(table, _new_part_files(store, table, loaded))[1]
        ]


def parts_skipped_count(store: Store) -> dict[str, int]:
    """`{"parts_skipped": n}` for a run's counts when a part is skipped; empty when none is, or
    when the store cannot be read (the run's own write reports that)."""
    try:
        skipped = len(skipped_parts(store))
    except WarehouseError:
        return {}
    return {"parts_skipped": skipped} if skipped else {}


@contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _environment(store: Store, path: Path) -> Iterator[None]:
    """Errors of the machine, not of longdoc (a read-only or full disk, an unreachable bucket)
    as one line that names the path: no retry or traceback helps with them."""
    import pyarrow as pa

    try:
        yield
    except OSError as exc:
        if exc.filename:  # Python's own file operations here all make or write the warehouse
            raise WarehouseError(f"cannot write {exc.filename}: {exc.strerror}") from exc
        raise WarehouseError(f"cannot read {store.root}: {first_line(exc)}") from exc
    except pa.ArrowException as exc:
        raise WarehouseError(f"cannot read {store.root}: {first_line(exc)}") from exc


def sync(store: Store, rebuild: bool = False) -> dict[str, int]:
    """Bring the warehouse up to date with the Parquet datasets (from scratch if `rebuild`)."""
    path = warehouse_path(store)
    with _environment(store, path), _writer_lock(path):
        for stale in path.parent.glob(f".{path.name}.*.tmp*"):  # left by a writer killed mid-load
            stale.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        con = _open_copy(path, tmp, copy=path.exists() and not rebuild)
        try:
            added = _load_new_parts(con, store)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    return added


def _open_copy(path: Path, tmp: Path, copy: bool) -> Any:
    """A writable connection to `tmp`, a copy of the warehouse (or empty), its tables made."""
    import duckdb

    tmp.unlink(missing_ok=True)
    try:
        if copy:
            shutil.copyfile(path, tmp)
        con = duckdb.connect(str(tmp))
        _create(con)
        return con
    except duckdb.Error as exc:
        if not copy:
            raise WarehouseError(f"cannot write {tmp}: {first_line(exc)}") from exc
        # The warehouse is a catalogue of the Parquet datasets: a damaged one is made again.
        log.warning("longdoc: warning: %s is damaged (%s): rebuilding it", path, first_line(exc))
        return _open_copy(path, tmp, copy=False)


# Library callers (tests, tools) get every row; the CLI prints at most QueryLimits().rows.
EVERY_ROW = replace(QueryLimits(), rows=0)


def query(store: Store, sql: str, limits: QueryLimits = EVERY_ROW) -> tuple[list[str], list[tuple]]:
    """Run one read statement in the sandbox (storage/sandbox.py); returns column names and
    rows, at most `limits.rows + 1` of them when `limits.rows` is set."""
    try:
        sandbox.check_read_only(sql)  # before anything is opened or synced
        limits.check()
    except QueryRefused as exc:
        raise WarehouseError(str(exc)) from exc
    path = warehouse_path(store)
    if not store.is_local:  # another machine may have added to the bucket: catch up first
        sync(store)
    if store.is_local and not Path(store.fs_and_base[1]).is_dir():
        raise WarehouseError(f"no data directory at {store.fs_and_base[1]}")
    if not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `longdoc run` or `longdoc rebuild`")
    con = _connect(path, limits)
    try:
        return sandbox.run(con, sql, limits)
    except QueryRefused as exc:
        raise WarehouseError(str(exc)) from exc
    finally:
        con.close()


def _connect(path: Path, limits: QueryLimits, attempts: int = 20) -> Any:
    import duckdb

    for attempt in range(attempts):
        try:
            return sandbox.connect(str(path), limits)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():  # damaged, or not a DuckDB file at all
                raise WarehouseError(
                    f"cannot open {path}: {first_line(exc)} (`longdoc rebuild` makes it again)"
                ) from exc
            if attempt == attempts - 1:  # a lock held by a foreign writer: wait briefly
                raise WarehouseError(f"warehouse is busy: {first_line(exc)}") from exc
            time.sleep(0.25)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open {path}: {first_line(exc)}") from exc
    raise AssertionError("unreachable")
