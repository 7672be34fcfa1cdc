"""The DuckDB warehouse: a queryable catalogue loaded from the Parquet datasets.

Writers never touch the live file: they copy it, upsert the part files not loaded yet, and
atomically rename the copy over it. A reader therefore always opens a complete snapshot, and
`rebuild` can recreate the whole file from Parquet at any time.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.datasets import Store
from storage.schema import JSON_COLUMNS, KEYS, SCHEMAS

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


def _load_new_parts(con: Any, store: Store) -> dict[str, int]:
    """Upsert every part file not loaded yet; returns the rows added per table."""
    import pyarrow.dataset as pads

    added: dict[str, int] = {}
    loaded = {row[0] for row in con.execute("SELECT part FROM _loaded_parts").fetchall()}
    fs, base = store.fs_and_base
    for table, schema in SCHEMAS.items():
        new = [p for p in store.parts(table) if p[len(base) :] not in loaded]
        if not new:
            continue
        incoming = pads.dataset(new, schema=schema, format="parquet", filesystem=fs).to_table()
        before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        con.register("incoming", incoming)
        verb = "INSERT OR REPLACE" if table == "runs" else "INSERT OR IGNORE"
        con.execute(f"{verb} INTO {table} SELECT * FROM incoming")
        con.unregister("incoming")
        after = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        added[table] = after - before
        con.executemany("INSERT OR IGNORE INTO _loaded_parts VALUES (?)", [[p[len(base) :]] for p in new])
    return added


@contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sync(store: Store, rebuild: bool = False) -> dict[str, int]:
    """Bring the warehouse up to date with the Parquet datasets (from scratch if `rebuild`)."""
    import duckdb

    path = warehouse_path(store)
    with _writer_lock(path):
        for stale in path.parent.glob(f".{path.name}.*.tmp*"):  # left by a writer killed mid-load
            stale.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if path.exists() and not rebuild:
            shutil.copyfile(path, tmp)
        con = duckdb.connect(str(tmp))
        try:
            _create(con)
            added = _load_new_parts(con, store)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    return added


def query(store: Store, sql: str, attempts: int = 20) -> tuple[list[str], list[tuple]]:
    """Run one read-only SQL statement; returns column names and rows."""
    import duckdb

    path = warehouse_path(store)
    if not store.is_local:  # another machine may have added to the bucket: catch up first
        sync(store)
    if not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `longdoc run` or `longdoc rebuild`")
    for attempt in range(attempts):
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:  # a lock held by a foreign writer: wait briefly
            if attempt == attempts - 1:
                raise WarehouseError(f"warehouse is busy: {exc}") from exc
            time.sleep(0.25)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(first_line) from exc
    finally:
        con.close()
