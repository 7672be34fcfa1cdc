"""Reading and committing lake rows: a small typed API, no SQL text from callers.

Reads name a table, its columns and a filter: `{column: value}` is equality, `{column: [values]}`
membership, the list passed to DuckDB as an Arrow table (never spliced into the SQL), and
`{column: Prefix(text)}` the values that start with `text` (a parameter too). Column names are
checked against storage/schema.py. A commit writes rows of several tables (and a
shard stage's completion row) in one transaction that first replaces the `_claim` row: two
writers at once conflict in the catalog, the second retries and its anti-join on the keys then
sees the first's rows, so no key is stored twice.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from storage.lake import LAKE, LakeError, LakeRef, connect
from storage.lakeschema import ensure_tables, is_current
from storage.sandbox import first_line
from storage.schema import KEYS, SCHEMAS


@dataclass(frozen=True)
class Prefix:
    """A read filter: the values of a column that start with `text`."""

    text: str


Where = Mapping[str, "str | int | Prefix | Sequence[str]"]
COMMIT_ATTEMPTS = 30
PAGE_ROWS = 20_000  # rows per read connection when streaming (the catalog is released between pages)
REPLACED = frozenset({"runs"})  # a run's row is replaced as the run moves on to its final status

_ready: set[LakeRef] = set()  # lakes whose tables this process has checked


@dataclass(frozen=True)
class Completion:
    """The completion row a shard stage commits with its rows."""

    stage: str
    config_id: str
    shard_key: str


def _check_columns(table: str, names: Sequence[str]) -> None:
    if table not in SCHEMAS:
        raise ValueError(f"no table {table!r}")
    unknown = [n for n in names if n not in SCHEMAS[table].names]
    if unknown:
        raise ValueError(f"table {table} has no column {unknown[0]!r}")


def ensure_lake(ref: LakeRef) -> None:
    """Make the lake's tables once per process (a lake made by an older release gets its new
    columns; a current one is only read)."""
    import duckdb

    if ref in _ready:
        return
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            _make_tables(ref)
            break
        except LakeError as exc:  # two processes making a new lake at once: the second retries
            # (a conflict's message says so only past its first line, which LakeError keeps)
            racing = isinstance(exc.__cause__, duckdb.TransactionException)
            racing = racing or any(w in str(exc).lower() for w in ("conflict", "exists", "duplicate"))
            if not racing or attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (1 + attempt % 5))
    _ready.add(ref)


def _make_tables(ref: LakeRef) -> None:
    """Tables, columns and views made when missing; a current lake is only read."""
    import duckdb

    if ref.catalog_exists():
        try:
            with connect(ref, read_only=True) as con:
                if is_current(con):
                    return
        except LakeError as exc:
            if "does not exist" not in str(exc):  # a new PostgreSQL database: made below
                raise
    try:
        with connect(ref) as con:
            con.execute("BEGIN")
            if ensure_tables(con):
                con.execute("CALL lake.set_commit_message('longdoc', '', extra_info => '{\"event\": \"schema\"}')")
            con.execute("COMMIT")
    except duckdb.Error as exc:
        raise LakeError(f"cannot make the lake's tables: {first_line(exc)}") from exc


def _filter_sql(con: Any, table: str, where: Where | None) -> tuple[str, list[Any]]:
    if not where:
        return "", []
    _check_columns(table, list(where))
    clauses, params = [], []
    for i, (column, value) in enumerate(where.items()):
        if isinstance(value, str | int):
            clauses.append(f'"{column}" = ?')
            params.append(value)
        elif isinstance(value, Prefix):
            clauses.append(f'starts_with("{column}", ?)')
            params.append(value.text)
        else:
            name = f"_in_{i}"
            con.register(name, pa.table({"v": pa.array(list(value), type=pa.string())}))
            clauses.append(f'"{column}" IN (SELECT v FROM {name})')
    return " WHERE " + " AND ".join(clauses), params


def _cast(table: str, data: pa.Table, columns: Sequence[str]) -> pa.Table:
    schema = pa.schema([SCHEMAS[table].field(c) for c in columns])
    arrays = [
        data.column(i).cast(schema.field(i).type) if data.num_rows else pa.array([], schema.field(i).type)
        for i in range(len(columns))
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _select(table: str, columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"::VARCHAR' if c in _json(table) else f'"{c}"' for c in columns)


def _json(table: str) -> tuple[str, ...]:
    from storage.schema import JSON_COLUMNS

    return JSON_COLUMNS.get(table, ())


def read(
    ref: LakeRef,
    table: str,
    columns: Sequence[str] | None = None,
    where: Where | None = None,
    snapshot: int | None = None,
) -> pa.Table:
    """The rows of a table (some columns, filtered), as the lake stands now or at `snapshot`."""
    names = list(columns or SCHEMAS[table].names)
    _check_columns(table, names)
    ensure_lake(ref)
    with connect(ref, read_only=True, snapshot=snapshot) as con:
        clause, params = _filter_sql(con, table, where)
        data = _arrow(con.execute(f"SELECT {_select(table, names)} FROM {LAKE}.{table}{clause}", params))
    return _cast(table, data, names)


def iter_batches(
    ref: LakeRef, table: str, columns: Sequence[str] | None = None, where: Where | None = None, batch_size: int = 1024
) -> Iterator[pa.RecordBatch]:
    """A table's rows in record batches, page by page at one snapshot, so neither memory nor the
    catalog is held for the whole read."""
    names = list(columns or SCHEMAS[table].names)
    _check_columns(table, names)
    ensure_lake(ref)
    snapshot = current_snapshot(ref)
    order = ", ".join(f'"{k}"' for k in KEYS[table])
    offset = 0
    while True:
        with connect(ref, read_only=True, snapshot=snapshot) as con:
            clause, params = _filter_sql(con, table, where)
            sql = f"SELECT {_select(table, names)} FROM {LAKE}.{table}{clause} ORDER BY {order}"
            sql += f" LIMIT {PAGE_ROWS} OFFSET {offset}"
            page = _cast(table, _arrow(con.execute(sql, params)), names)
        yield from page.to_batches(max_chunksize=batch_size)
        if page.num_rows < PAGE_ROWS:
            return
        offset += PAGE_ROWS


def _arrow(cursor: Any) -> pa.Table:
    """The whole result, read before the lake is detached (DuckDB returns a lazy reader)."""
    result = cursor.arrow()
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


def current_snapshot(ref: LakeRef) -> int:
    with connect(ref, read_only=True) as con:
        return int(con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0])


def is_done(ref: LakeRef, done: Completion) -> bool:
    ensure_lake(ref)
    with connect(ref, read_only=True) as con:
        row = con.execute(
            f"SELECT count(*) FROM {LAKE}._completion WHERE stage = ? AND config_id = ? AND shard_key = ?",
            [done.stage, done.config_id, done.shard_key],
        ).fetchone()
    return bool(row and row[0])


def as_table(table: str, rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    schema = SCHEMAS[table]
    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=schema)
    return data.select(schema.names).cast(schema)


def commit(
    ref: LakeRef,
    rows: Mapping[str, pa.Table | Sequence[Mapping[str, Any]]],
    run_id: str,
    event: str = "stage",
    done: Completion | None = None,
    follows: Mapping[str, str] | None = None,
    batch: str = "",
) -> dict[str, int]:
    """Store the rows whose keys are not stored yet, and `done`, in one transaction; returns the
    rows added per table. When `done` is committed already (another writer finished the same
    shard stage), nothing is written. `follows` maps a table to the table its rows belong to
    (`{"redactions": "documents"}`): its rows are stored only with a row of that table that this
    commit adds (joined on the latter's key), so a racing writer's details never join a row
    another writer stored first. `batch` names the commit in its snapshot's extra info."""
    import duckdb

    tables = {name: as_table(name, data) for name, data in rows.items()}
    ensure_lake(ref)
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            with connect(ref) as con:
                return _commit_once(con, tables, run_id, event, done, follows or {}, batch)
        except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise LakeError(f"cannot commit to the lake: {first_line(exc)}") from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + (os.getpid() % 7) / 7))
        except duckdb.Error as exc:
            raise LakeError(f"cannot commit to the lake at {ref.data_dir}: {first_line(exc)}") from exc
    raise AssertionError("unreachable")


def _commit_once(
    con: Any,
    tables: Mapping[str, pa.Table],
    run_id: str,
    event: str,
    done: Completion | None,
    follows: Mapping[str, str],
    batch: str = "",
) -> dict[str, int]:
    added: dict[str, int] = {}
    con.execute("BEGIN")
    writer = f"{socket.gethostname()}:{os.getpid()}"
    con.execute(f"DELETE FROM {LAKE}._claim")
    con.execute(f"INSERT INTO {LAKE}._claim VALUES (?, now())", [writer])
    if done and _done_in(con, done):
        con.execute("ROLLBACK")
        return added
    # A following table first, while its owner's new keys are not stored yet: it takes the rows
    # whose owner this commit adds.
    for name in sorted(tables, key=lambda t: t not in follows):
        data = tables[name]
        if data.num_rows == 0:
            continue
        added[name] = _insert_new(con, name, data, follows.get(name))
    if done:
        con.execute(
            f"INSERT INTO {LAKE}._completion VALUES (?, ?, ?, ?, now())",
            [done.stage, done.config_id, done.shard_key, run_id],
        )
    extra = {"event": event, "writer": writer} | ({"stage": done.stage, "shard": done.shard_key} if done else {})
    extra |= {"batch": batch} if batch else {}
    _finish(con, run_id, extra)
    return added


def _finish(con: Any, run_id: str, extra: Mapping[str, str]) -> None:
    """Name the run in the snapshot, and commit."""
    con.execute("CALL lake.set_commit_message('longdoc', ?, extra_info => ?)", [run_id, json.dumps(extra)])
    con.execute("COMMIT")


def commit_completions(ref: LakeRef, done: Sequence[Completion], run_id: str = "") -> None:
    """Completion rows alone (migrated markers), those not recorded yet."""
    rows = pa.table(
        {
            "stage": [d.stage for d in done],
            "config_id": [d.config_id for d in done],
            "shard_key": [d.shard_key for d in done],
            "run_id": [run_id] * len(done),
        }
    )
    with connect(ref) as con:
        con.register("incoming", rows)
        con.execute("BEGIN")
        con.execute(
            f"INSERT INTO {LAKE}._completion SELECT i.*, now() FROM incoming i WHERE NOT EXISTS (SELECT 1 FROM "
            f"{LAKE}._completion c WHERE c.stage = i.stage AND c.config_id = i.config_id AND c.shard_key = i.shard_key)"
        )
        con.execute("CALL lake.set_commit_message('longdoc', ?, extra_info => '{\"event\": \"migrate\"}')", [run_id])
        con.execute("COMMIT")


def _done_in(con: Any, done: Completion) -> bool:
    row = con.execute(
        f"SELECT count(*) FROM {LAKE}._completion WHERE stage = ? AND config_id = ? AND shard_key = ?",
        [done.stage, done.config_id, done.shard_key],
    ).fetchone()
    return bool(row and row[0])


def _insert_new(con: Any, table: str, data: pa.Table, owner: str | None = None) -> int:
    """Insert the rows of `data` whose key is not stored (one per key); `runs` rows replace.
    With an `owner` table, only the rows whose owner's key is not stored either (the caller
    inserts the owner's rows next, in the same transaction)."""
    keys = KEYS[table]
    names = ", ".join(f'"{n}"' for n in SCHEMAS[table].names)
    match = " AND ".join(f'x."{k}" = i."{k}"' for k in keys)
    con.register("incoming", data)
    try:
        if table in REPLACED:
            con.execute(f"DELETE FROM {LAKE}.{table} x WHERE EXISTS (SELECT 1 FROM incoming i WHERE {match})")
        partition = ", ".join(f'"{k}"' for k in keys)
        sql = (
            f"INSERT INTO {LAKE}.{table} ({names}) SELECT {names} FROM ("
            f"SELECT * FROM incoming QUALIFY row_number() OVER (PARTITION BY {partition}) = 1) i "
            f"WHERE NOT EXISTS (SELECT 1 FROM {LAKE}.{table} x WHERE {match})"
        )
        if owner:
            owned = " AND ".join(f'o."{k}" = i."{k}"' for k in KEYS[owner])
            sql += f" AND NOT EXISTS (SELECT 1 FROM {LAKE}.{owner} o WHERE {owned})"
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.unregister("incoming")


def now() -> datetime:
    return datetime.now(UTC)
