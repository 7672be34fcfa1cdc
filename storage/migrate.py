"""Migration of a data directory of the Parquet-parts layout (releases before the lake) into it.

That layout kept each table as `<data-dir>/<table>/*.parquet`, a `warehouse.duckdb` copy of
them and completion markers under `_completion/`. Its rows are committed to the lake once, in
one transaction, deduplicated by key as the old warehouse loaded them (the last part's `runs`
row wins); markers whose parts all exist become completion rows. The old files are deleted
after the commit, so the data is not kept twice; a migration cut short leaves them, and the
next open (or `longdoc rebuild`) finishes it: rows already migrated are not inserted again.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from storage import lakeio
from storage.lake import LakeRef
from storage.parts import split_parts
from storage.schema import SCHEMAS

log = logging.getLogger("longdoc.storage")

OLD_FILES = ("warehouse.duckdb", "warehouse.lock", "warehouse.duckdb.wal")
MARKER_DIR = "_completion"


def old_layout(ref: LakeRef) -> list[Path]:
    """The old layout's table folders that hold part files (none for an object store)."""
    if not ref.is_local:
        return []
    base = Path(ref.data_path)
    return [base / t for t in SCHEMAS if (base / t).is_dir() and any((base / t).glob("*.parquet"))]


_opened: set[LakeRef] = set()


def open_lake(ref: LakeRef) -> None:
    """The lake made current, once per process, and a data directory of the old layout migrated
    into it on first open."""
    if ref in _opened:
        return
    lakeio.ensure_lake(ref)
    if old_layout(ref) or has_leftovers(ref):
        migrate_parts(ref)
    _opened.add(ref)


def has_leftovers(ref: LakeRef) -> bool:
    base = Path(ref.data_path)
    return ref.is_local and ((base / MARKER_DIR).is_dir() or (base / OLD_FILES[0]).exists())


def migrate_parts(ref: LakeRef) -> dict[str, int]:
    """Commit the old layout's rows to the lake and remove the old files; rows added per table."""
    folders = old_layout(ref)
    base = Path(ref.data_path)
    if not folders and not has_leftovers(ref):
        return {}
    fs = pafs.LocalFileSystem()
    rows: dict[str, pa.Table] = {}
    present: set[str] = set()
    for folder in folders:
        table = folder.name
        infos = sorted(
            (
                i
                for i in fs.get_file_info(pafs.FileSelector(str(folder)))
                if i.is_file and i.base_name.endswith(".parquet")
            ),
            key=lambda i: i.path,
        )
        usable, _ = split_parts(fs, table, [i for i in infos if not i.base_name.startswith(".")])
        present |= {f"{table}/{Path(p).name}" for p in usable}
        if usable:
            data = ds.dataset(usable, schema=SCHEMAS[table], format="parquet", filesystem=fs).to_table()
            rows[table] = _last_per_run(data) if table == "runs" else data
    done = _markers(base / MARKER_DIR, present)
    added = lakeio.commit(ref, rows, "", event="migrate")
    if done:
        lakeio.commit_completions(ref, done)
    for folder in folders:
        shutil.rmtree(folder)
    shutil.rmtree(base / MARKER_DIR, ignore_errors=True)
    for name in OLD_FILES:
        (base / name).unlink(missing_ok=True)
    log.warning("longdoc: migrated %s from Parquet parts into the lake: %s", base, added)
    return added


def _last_per_run(data: pa.Table) -> pa.Table:
    """One row per run_id, the one of the last part (the old warehouse's INSERT OR REPLACE)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in data.to_pylist():
        latest[row["run_id"]] = row
    return pa.Table.from_pylist(list(latest.values()), schema=SCHEMAS["runs"])


def _markers(directory: Path, present: set[str]) -> list[lakeio.Completion]:
    """The completion markers whose every named part was migrated."""
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            marker = json.loads(path.read_text())
            parts = marker["parts"]
            done = lakeio.Completion(str(marker["stage"]), str(marker["config_id"]), str(marker["shard"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(parts, dict) and all(part in present for part in parts):
            found.append(done)
    return found
