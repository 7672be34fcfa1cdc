"""Finding input files: paths, directories (recursive), globs, local or object-store URLs.

Local directories are walked by hand, not by pyarrow, so that a symlink pointing back up the
tree, a link to itself, a dangling link or a FIFO becomes a named problem instead of an endless
walk, a crash or a read that never returns.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from storage.datasets import StorageError, is_url, split_uri, to_uri

# A str that came from undecodable bytes (a file name, via surrogate escapes) or from a JSON
# "\ud800" escape holds lone surrogates: they cannot be written as UTF-8, so not to Parquet.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class InputFile:
    """One file to read, with the cheap facts that tell whether it changed since last time."""

    fs: pafs.FileSystem
    path: str
    size: int
    mtime_ns: int

    @property
    def uri(self) -> str:
        return to_uri(self.fs, self.path)


@dataclass(frozen=True)
class BadInput:
    """An entry that is not a readable file: `reason` is a short code, `error` says why."""

    uri: str
    reason: str
    error: str
    path: str = ""


@dataclass
class Inputs:
    files: list[InputFile] = field(default_factory=list)
    bad: list[BadInput] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def expand_inputs(patterns: Sequence[str], exclude: str | None = None) -> Inputs:
    """Files named by paths, directories and globs, leaving out everything under `exclude`
    (longdoc's own data directory) and hidden names; the patterns matching nothing; the bad entries."""
    found = Inputs()
    skip = _split(exclude)[1].rstrip("/") + "/" if exclude else None
    seen: set[str] = set()
    seen_bad: set[str] = set()
    for pattern in patterns:
        try:
            files, bad = _expand(pattern)
        except Exception as exc:  # a pattern no filesystem accepts (a NUL byte, an unknown scheme)
            files, bad = [], [_bad_pattern(pattern, exc)]
        files = [f for f in files if not (skip and f.path.startswith(skip))]
        if not files and not bad:
            found.missing.append(pattern)
        for item in files:
            if item.path not in seen:
                seen.add(item.path)
                found.files.append(item)
        for entry in bad:
            if entry.uri not in seen_bad:
                seen_bad.add(entry.uri)
                found.bad.append(entry)
    return found


def _expand(pattern: str) -> tuple[list[InputFile], list[BadInput]]:
    fs, path = _split(pattern)
    glob = any(c in path for c in "*?[")
    root = _glob_root(path) if glob else path
    files, bad = _walk_local(root) if isinstance(fs, pafs.LocalFileSystem) else _walk_remote(fs, root)
    if glob:
        files = [f for f in files if fnmatch.fnmatch(f.path, path)]
        bad = [b for b in bad if fnmatch.fnmatch(b.path, path)]
    return files, bad


def _bad_pattern(pattern: str, exc: Exception) -> BadInput:
    if isinstance(exc, ValueError) and "null" in str(exc):  # the NUL encoded too: no store cuts the name short
        return BadInput(escape_text(pattern).replace("\x00", "%00"), "bad-name", "the name holds a NUL byte")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BadInput(escape_text(pattern), "unreadable", escape_text(first)[:200])


def valid_utf8(text: str) -> bool:
    return _SURROGATE.search(text) is None


def escape_text(text: str) -> str:
    """`text` with each byte that is not UTF-8 percent-encoded (`caf\xe9` -> `caf%E9`), so that
    it can be stored; valid text is returned unchanged."""
    if valid_utf8(text):
        return text
    return _SURROGATE.sub(lambda m: "".join(f"%{b:02X}" for b in _raw_bytes(m.group())), text)


def _raw_bytes(char: str) -> bytes:
    """The bytes a lone surrogate stands for: the undecodable byte of a surrogate escape, else
    the surrogate's own (invalid) UTF-8 encoding."""
    return char.encode("utf-8", "surrogateescape" if "\udc80" <= char <= "\udcff" else "surrogatepass")


def _split(pattern: str) -> tuple[pafs.FileSystem, str]:
    """split_uri, but a local path naming a symlink loop is kept as given (Path.resolve raises)."""
    if is_url(pattern):
        return split_uri(pattern)
    local = pattern.removeprefix("file://")
    return pafs.LocalFileSystem(), os.path.realpath(os.path.expanduser(local))


def _glob_root(pattern: str) -> str:
    root = pattern
    while any(c in root for c in "*?["):
        root = root.rsplit("/", 1)[0]
    return root or "/"


def _walk_local(root: str) -> tuple[list[InputFile], list[BadInput]]:
    files: list[InputFile] = []
    bad: list[BadInput] = []
    fs = pafs.LocalFileSystem()
    try:
        info = os.stat(root)
    except OSError as exc:
        if os.path.islink(root):
            bad.append(_bad_link(fs, root, exc))
        return files, bad
    if not valid_utf8(root):
        return files, [_bad_name(fs, root)]
    if stat.S_ISDIR(info.st_mode):
        _walk_dir(fs, root, {os.path.realpath(root)}, files, bad)
    else:
        _add_entry(fs, root, info, files, bad)
    return sorted(files, key=lambda f: f.path), bad


def _walk_dir(
    fs: pafs.FileSystem, directory: str, ancestors: set[str], files: list[InputFile], bad: list[BadInput]
) -> None:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        bad.append(_bad(fs, directory, "unreadable", f"cannot list directory: {exc.strerror}"))
        return
    for name in names:
        if name.startswith("."):
            continue
        path = f"{directory.rstrip('/')}/{name}"
        if not valid_utf8(name):  # not descended into either: everything below has the bad name
            bad.append(_bad_name(fs, path))
            continue
        try:
            info = os.stat(path)
        except OSError as exc:
            bad.append(_bad_link(fs, path, exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            real = os.path.realpath(path)
            if real in ancestors:
                bad.append(_bad(fs, path, "symlink-loop", f"links back to its own ancestor {real}"))
            else:
                _walk_dir(fs, path, ancestors | {real}, files, bad)
        else:
            _add_entry(fs, path, info, files, bad)


def _add_entry(
    fs: pafs.FileSystem, path: str, info: os.stat_result, files: list[InputFile], bad: list[BadInput]
) -> None:
    if stat.S_ISREG(info.st_mode):
        files.append(InputFile(fs, path, info.st_size, info.st_mtime_ns))
    else:  # a FIFO, socket or device: opening it could block forever
        bad.append(_bad(fs, path, "not-a-file", "not a regular file (FIFO, socket or device)"))


def _bad(fs: pafs.FileSystem, path: str, reason: str, error: str) -> BadInput:
    return BadInput(to_uri(fs, path), reason, error, path)


def _bad_name(fs: pafs.FileSystem, path: str) -> BadInput:
    """A name that is not UTF-8 (e.g. a Latin-1 name on Linux): its URI percent-encodes the bytes."""
    return _bad(fs, path, "bad-name", "the file name is not valid UTF-8 (its bytes are percent-encoded here)")


def _bad_link(fs: pafs.FileSystem, path: str, exc: OSError) -> BadInput:
    if exc.errno == errno.ELOOP:
        return _bad(fs, path, "symlink-loop", "too many levels of symbolic links")
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return _bad(fs, path, "unreadable", f"dangling symbolic link to {os.readlink(path)}")
    return _bad(fs, path, "unreadable", exc.strerror or str(exc))


def _walk_remote(fs: pafs.FileSystem, path: str) -> tuple[list[InputFile], list[BadInput]]:
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [_remote_file(fs, info)], []
        if info.type != pafs.FileType.Directory:
            return [], []
        entries = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except OSError as exc:
        return [], [_bad(fs, path, "unreadable", str(exc).splitlines()[0])]
    hidden = lambda p: any(part.startswith(".") for part in p[len(path) :].split("/"))  # noqa: E731
    files = [_remote_file(fs, i) for i in entries if i.is_file and not hidden(i.path)]
    return sorted(files, key=lambda f: f.path), []


def _remote_file(fs: pafs.FileSystem, info: pafs.FileInfo) -> InputFile:
    return InputFile(fs, info.path, info.size or 0, info.mtime_ns or 0)


def read_input(item: InputFile, limit: int) -> bytes:
    """A file's bytes; StorageError past `limit` bytes, checked before and while reading
    (a file growing under us cannot push past it)."""
    if item.size > limit:
        raise StorageError(f"{item.size} bytes is over the {limit}-byte limit")
    with item.fs.open_input_stream(item.path) as stream:
        data = bytes(stream.read(limit + 1))
    if len(data) > limit:
        raise StorageError(f"over the {limit}-byte limit (the file grew while being read)")
    return data
