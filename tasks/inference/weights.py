"""Weight files: which ones longdoc loads (safetensors and GGUF, never a pickle) and the hashes
of their bytes, which make a model's identity.

Hashing a multi-GB model takes seconds, so each file's hash is kept in a small JSON cache under
the longdoc cache directory, keyed by the file's resolved path, size and modification time: a
file rewritten in place gets a new mtime and is hashed again. The cache is only a shortcut: a
missing, corrupt or unwritable one means hashing again, never a wrong identity.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from tasks.errors import ModelError

WEIGHT_PATTERNS = ("*.safetensors", "*.gguf")
# Formats that unpickle (run code) when loaded: refused, whatever they hold.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
HASH_CACHE_FILE = "weight-hashes.json"


def weight_files(directory: Path, label: str) -> list[Path]:
    """The safetensors and GGUF files of a model directory; a ModelError (one line) when there
    are none, naming the pickle files that longdoc will not load."""
    found = sorted({f for pattern in WEIGHT_PATTERNS for f in directory.glob(pattern) if f.is_file()})
    if found:
        return found
    pickles = sorted({f.name for pattern in PICKLE_PATTERNS for f in directory.glob(pattern)})
    if pickles:
        raise ModelError(
            f"model '{label}' has only pickle weights ({', '.join(pickles[:3])}); longdoc loads safetensors"
            " or GGUF only (convert it, e.g. with save_pretrained(..., safe_serialization=True))"
        )
    raise ModelError(f"model '{label}' has no weight files (*.safetensors or *.gguf) in {directory}")


def _read_cache(path: Path) -> dict[str, list]:
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_cache(path: Path, cache: dict[str, list]) -> None:
    """Whole or not at all (a temporary file renamed); a cache that cannot be written is skipped."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _cached_hash(entry: object, size: int, mtime_ns: int) -> str | None:
    """A cache entry's hash when it is well formed and about this very file version."""
    if not (isinstance(entry, list) and len(entry) == 3 and entry[:2] == [size, mtime_ns]):
        return None
    return entry[2] if isinstance(entry[2], str) and len(entry[2]) == 64 else None


def file_hashes(files: list[Path], cache_dir: Path) -> dict[Path, str]:
    """sha256 of each file's bytes, from the cache when its path, size and mtime are unchanged."""
    cache_file = cache_dir / HASH_CACHE_FILE
    cache = _read_cache(cache_file)
    hashes: dict[Path, str] = {}
    changed = False
    for file in files:
        resolved = file.resolve()
        stat = resolved.stat()
        cached = _cached_hash(cache.get(str(resolved)), stat.st_size, stat.st_mtime_ns)
        if cached:
            hashes[file] = cached
            continue
        with open(resolved, "rb") as source:
            hashes[file] = hashlib.file_digest(source, "sha256").hexdigest()
        cache[str(resolved)] = [stat.st_size, stat.st_mtime_ns, hashes[file]]
        changed = True
    if changed:
        _write_cache(cache_file, cache)
    return hashes
