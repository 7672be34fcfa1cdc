"""The lake's tables and views, made from storage/schema.py, and evolved when a column is added.

Besides the public tables the lake holds two of its own:
- `_completion` (stage, config_id, shard_key, run_id, committed_at): a shard stage is done when
  its row is there, committed in the same transaction as the stage's rows;
- `_claim`: one row that every writing transaction replaces, so that two writers committing at
  once conflict in the catalog and the second retries, seeing the first's rows (DuckLake itself
  lets two concurrent appends to one table both commit, which would store a key twice).
"""

from __future__ import annotations

from typing import Any

from storage.lake import LAKE
from storage.schema import SCHEMAS

DUCK_TYPES = {
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}

INTERNAL = {
    "_completion": "stage VARCHAR, config_id VARCHAR, shard_key VARCHAR, run_id VARCHAR, committed_at TIMESTAMPTZ",
    "_claim": "writer VARCHAR, claimed_at TIMESTAMPTZ",
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


def column_type(table: str, name: str) -> str:
    """JSON-valued columns (JSON_COLUMNS) are VARCHAR holding JSON text: DuckDB's JSON type
    refuses text Python's json writes (an escaped lone surrogate from a hostile record), and its
    `->`, `->>` and json_* functions read VARCHAR alike."""
    return DUCK_TYPES[str(SCHEMAS[table].field(name).type)]


def columns_ddl(table: str) -> str:
    return ", ".join(f'"{f.name}" {column_type(table, f.name)}' for f in SCHEMAS[table])


def ensure_tables(con: Any) -> bool:
    """Make what is missing (tables, columns added since, views); True when anything was made.
    Runs in the caller's transaction."""
    have = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", [LAKE]
        ).fetchall()
    )
    tables = {table for table, _ in have}
    views = {
        row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = ?", [LAKE]).fetchall()
    }
    changed = False
    for table in SCHEMAS:
        if table not in tables:
            con.execute(f"CREATE TABLE {LAKE}.{table} ({columns_ddl(table)})")
            changed = True
            continue
        for field in SCHEMAS[table]:
            if (table, field.name) not in have:  # a lake made before this column was added
                con.execute(f'ALTER TABLE {LAKE}.{table} ADD COLUMN "{field.name}" {column_type(table, field.name)}')
                changed = True
    for table, ddl in INTERNAL.items():
        if table not in tables:
            con.execute(f"CREATE TABLE {LAKE}.{table} ({ddl})")
            changed = True
    if "_claim" not in tables:  # a row from the start: every claim deletes one, so two conflict
        con.execute(f"INSERT INTO {LAKE}._claim VALUES ('', now())")
    for name, sql in VIEWS.items():
        if name not in views:
            con.execute(f"CREATE VIEW {LAKE}.{name} AS {sql}")
            changed = True
    return changed


def is_current(con: Any) -> bool:
    """True when every table, column and view is there (no write needed to open the lake)."""
    have = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", [LAKE]
        ).fetchall()
    )
    want = {(t, f.name) for t, s in SCHEMAS.items() for f in s} | {(v, "run_id") for v in VIEWS}
    return want <= have and set(INTERNAL) <= {t for t, _ in have}
