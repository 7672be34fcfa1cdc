"""Finding inputs: object-store style listings and reads, globs over bad entries, size limits."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from storage.datasets import StorageError
from storage.inputs import _walk_remote, expand_inputs, read_input


def test_a_non_local_filesystem_is_listed_and_read_through_pyarrow(tmp_path: Path) -> None:
    (tmp_path / "a" / ".hidden").mkdir(parents=True)
    (tmp_path / "a" / "one.txt").write_text("one", encoding="utf-8")
    (tmp_path / "a" / ".hidden" / "two.txt").write_text("two", encoding="utf-8")
    remote = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # stands in for s3://
    files, bad = _walk_remote(remote, "a")
    assert [f.path for f in files] == ["a/one.txt"] and not bad
    assert files[0].uri == "subtree://a/one.txt" and files[0].size == 3 and files[0].mtime_ns > 0
    assert read_input(files[0], 3) == b"one"
    with pytest.raises(StorageError, match="over the 2-byte limit"):
        read_input(files[0], 2)


def test_globs_keep_the_bad_entries_they_match(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "loop.md").symlink_to(tmp_path / "loop.md")
    found = expand_inputs([str(tmp_path / "*.txt"), str(tmp_path / "none-*.txt")])
    assert [Path(f.path).name for f in found.files] == ["ok.txt"]
    assert [(Path(b.path).name, b.reason) for b in found.bad] == [("loop.txt", "symlink-loop")]
    assert found.missing == [str(tmp_path / "none-*.txt")]
