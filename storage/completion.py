"""Completion markers: what a finished shard stage wrote, recorded in the data directory itself.

A marker is written after a stage's part files, and names the part files (with their sizes)
that hold the stage's output for the shard. A stage is skipped only when its marker is there
and every part it names is still there at that size, so the data directory alone decides what
is done: a copy or a restored backup carries its markers along with the data they describe, and
a part file deleted since makes the stage run again, which then redoes only the missing rows
(the stages skip rows already stored). The idea is datatrove's completion files, with the
outputs named so that they can be checked. Markers live under `_completion/`, outside every
table's directory, so no table read sees them.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from storage.datasets import StorageError, Store, read_bytes
from storage.schema import SCHEMAS

MARKER_DIR = "_completion"
MARKER_VERSION = 1
MARKER_LIMIT = 8 * 1024 * 1024  # a shard's marker names a few hundred parts at most
_NAME = re.compile(r"^[0-9a-z_-]{1,128}$")
_PART = re.compile(r"^([a-z_]+)/([^/\\]+\.parquet)$")

Outputs = Iterable[tuple[str, ds.Expression]]  # (table, the rows of the stage's output in it)


def marker_name(stage: str, config_id: str, shard_key: str) -> str:
    name = f"{config_id}-{stage}-{shard_key}"
    if not _NAME.match(name):  # the parts come from code, but a name must never become a path
        raise ValueError(f"not a marker name: {name!r}")
    return name


def _marker_path(store: Store, name: str) -> str:
    return f"{store.fs_and_base[1]}/{MARKER_DIR}/{name}.json"


def output_parts(store: Store, outputs: Outputs) -> dict[str, int]:
    """The part files (path under the store's root -> size) that hold the given rows."""
    fs, base = store.fs_and_base
    found: dict[str, int] = {}
    for table, where in outputs:
        parts, _ = store.usable_parts(table)  # a foreign file in the folder is no output of ours
        if not parts:
            continue
        dataset = ds.dataset(parts, schema=SCHEMAS[table], format="parquet", filesystem=fs)
        names = dataset.to_table(columns=["__filename"], filter=where).column("__filename")
        for path in set(names.to_pylist()):
            found[path[len(base) + 1 :]] = fs.get_file_info(path).size or 0
    return found


def record(store: Store, name: str, parts: Mapping[str, int], about: Mapping[str, object]) -> None:
    """Write a marker whole or not at all (a temporary name renamed, or one object-store PUT)."""
    fs, base = store.fs_and_base
    directory = f"{base}/{MARKER_DIR}"
    fs.create_dir(directory, recursive=True)
    body = json.dumps({"version": MARKER_VERSION, **about, "parts": dict(sorted(parts.items()))}, indent=1).encode()
    final = _marker_path(store, name)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(body)
        os.replace(tmp, final)
    else:
        with fs.open_output_stream(final) as out:
            out.write(body)


def _recorded_parts(store: Store, name: str) -> dict[str, int] | None:
    """The parts a marker names, or None when there is no marker or it cannot be trusted
    (unreadable, not ours, or naming anything but part files of known tables)."""
    fs, path = store.fs_and_base[0], _marker_path(store, name)
    try:
        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        marker = json.loads(read_bytes(fs, path, MARKER_LIMIT))
    except (StorageError, OSError, ValueError):
        return None
    parts = marker.get("parts") if isinstance(marker, dict) and marker.get("version") == MARKER_VERSION else None
    if not isinstance(parts, dict):
        return None
    for part, size in parts.items():
        match = _PART.match(part)
        if not match or match[1] not in SCHEMAS or match[2].startswith(".") or type(size) is not int:
            return None
    return parts


def is_done(store: Store, name: str) -> bool:
    """True when the marker is there and every part file it names is there, at its size."""
    parts = _recorded_parts(store, name)
    if parts is None:
        return False
    fs, base = store.fs_and_base
    present: dict[str, dict[str, int | None]] = {}
    for part, size in parts.items():
        table, file_name = part.split("/", 1)
        if table not in present:  # one listing per table, not one request per part
            selector = pafs.FileSelector(f"{base}/{table}", allow_not_found=True)
            present[table] = {i.base_name: i.size for i in fs.get_file_info(selector) if i.is_file}
        if present[table].get(file_name) != size:
            return False
    return True
