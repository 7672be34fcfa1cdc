"""The query sandbox: what `longdoc query` lets SQL do to the warehouse, and nothing more.

A read-only DuckDB connection is not enough: table functions (`read_csv`, `read_text`, `glob`),
COPY, EXPORT, ATTACH and INSTALL reach the file system and the network. So a query gets three
fences, each of which stops those on its own:

1. DuckDB's own parser must find exactly one statement, of type SELECT (which covers WITH,
   FROM-first, VALUES, DESCRIBE, SHOW and SUMMARIZE) or EXPLAIN of one, and DuckDB's tokenizer
   must find it begin with one of those words (PRAGMA parses as SELECT too, and is refused).
   Its parse tree may name only tables and views and a short list of table functions: no
   read_parquet, glob, query() or ducklake_* maintenance, no file as a table, no AT clause.
2. The connection has external access off except for the lake's own data directory (its data
   files are read from there; writing is refused by 1), extension autoinstall and autoload off,
   no spilling to a temp directory, and its configuration locked before the query runs, so no
   SQL can turn any of that back on.
3. The lake is attached read-only, at one snapshot.

Limits on memory, threads, time and printed rows keep one query from taking the machine.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

# The words a statement may begin with; EXPLAIN only in front of one of the others.
READ_WORDS = ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE")


class QueryRefused(Exception):
    """SQL the sandbox does not run, said in one line."""


@dataclass(frozen=True)
class QueryLimits:
    """What one query may use. The defaults here are the CLI's defaults."""

    memory: str = "2GB"  # DuckDB's memory_limit; nothing spills to disk
    threads: int = 2
    seconds: float = 60.0
    rows: int = 1000  # printed rows; 0 for all

    def check(self) -> None:
        import duckdb

        most = max(os.cpu_count() or 1, QueryLimits.threads)
        if not 1 <= self.threads <= most:
            raise QueryRefused(f"--threads must be from 1 to {most} (the machine's cores), not {self.threads}")
        try:  # DuckDB's own reading of a size, on a database of nothing
            duckdb.connect(":memory:", config={"memory_limit": self.memory}).close()
        except duckdb.Error as exc:
            raise QueryRefused(f"--memory-limit {self.memory}: {first_line(exc)}") from exc
        if not self.seconds > 0:
            raise QueryRefused(f"--timeout must be more than 0 seconds, not {self.seconds}")
        if self.rows < 0:
            raise QueryRefused(f"--max-rows must be 0 (all) or more, not {self.rows}")


def _word(sql: str, start: int) -> str:
    """The keyword or operator a token begins with (DuckDB's tokenizer gives starts only)."""
    end = start
    while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
        end += 1
    return sql[start:end].upper() if end > start else sql[start : start + 1]


def check_read_only(sql: str, explained: bool = False) -> None:
    """Refuse anything but one read statement, by DuckDB's parser and tokenizer."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
        tokens = duckdb.tokenize(sql)
    except duckdb.Error as exc:
        raise QueryRefused(first_line(exc)) from exc
    if len(statements) != 1:
        raise QueryRefused(f"one statement per query, not {len(statements)}")
    kind = statements[0].type.name
    first = _word(sql, tokens[0][0])
    if kind == "EXPLAIN" and first == "EXPLAIN" and not explained:
        check_read_only(sql[_explained_start(sql, tokens) :], explained=True)
        return
    if kind != "SELECT" or first not in (*READ_WORDS, "("):
        raise QueryRefused(f"only reads are allowed ({', '.join(READ_WORDS)} or EXPLAIN of one), not {first}")
    check_reaches_only_tables(sql)


def _explained_start(sql: str, tokens: list[tuple[int, Any]]) -> int:
    """Where the statement under EXPLAIN [ANALYZE] [(options)] begins."""
    i = 1
    if i < len(tokens) and _word(sql, tokens[i][0]) == "ANALYZE":
        i += 1
    if i < len(tokens) and _word(sql, tokens[i][0]) == "(":
        while i < len(tokens) and _word(sql, tokens[i][0]) != ")":
            i += 1
        i += 1
    if i >= len(tokens):
        raise QueryRefused("EXPLAIN of nothing")
    return int(tokens[i][0])


# The connection's settings, before the lake is attached and the configuration locked.
SETTINGS: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # no scanning of this process's Python objects
    "temp_directory": "",  # over the memory limit a query fails; it never writes a spill file
}

# Table functions a query may call: none reads a file, runs SQL text or changes the lake.
TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "json_each",
        "json_tree",
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_views",
        "duckdb_schemas",
        "duckdb_types",
        "duckdb_functions",
        "ducklake_snapshots",
        "ducklake_table_info",
    }
)


def check_reaches_only_tables(sql: str) -> None:
    """Refuse a statement that names a table function off the list above (read_parquet, glob,
    query, ducklake_expire_snapshots, ...), a file as a table (`FROM 'x.csv'`) or a time-travel
    clause (which would read past the run boundary the query is held to; `--as-of` does that)."""
    import json

    import duckdb

    row = duckdb.connect(":memory:").execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise QueryRefused(str(tree.get("error_message", "cannot parse the statement")))
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS:
                raise QueryRefused(f"the table function {name} is not allowed in a query")
        if node.get("type") == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            if not name.replace("_", "").isalnum():
                raise QueryRefused(f"only tables and views can be read, not {name!r}")
            if node.get("at_clause"):
                raise QueryRefused("AT (...) is not allowed in a query: use --as-of RUN_ID")
        stack.extend(node.values())


def run(con: Any, sql: str, limits: QueryLimits) -> tuple[list[str], list[tuple]]:
    """Run a checked statement on a sandboxed connection: its columns and at most
    `limits.rows + 1` rows (one more than is printed, to tell that there were more)."""
    import duckdb

    check_read_only(sql)
    timer = threading.Timer(limits.seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(limits.rows + 1) if limits.rows else cursor.fetchall()
        return columns, rows
    except duckdb.InterruptException as exc:
        raise QueryRefused(f"the query ran past its time limit of {limits.seconds:g} s (--timeout)") from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryRefused(f"the query needed more than its memory limit of {limits.memory} (--memory-limit)") from exc
    except duckdb.Error as exc:
        raise QueryRefused(first_line(exc)) from exc
    finally:
        timer.cancel()


def first_line(exc: BaseException) -> str:
    """An exception's first line: DuckDB and Arrow append context and hints below it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
