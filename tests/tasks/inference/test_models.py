"""Model resolution: kinds detected from configuration, roles checked, clear errors, identity from
content, safetensors or GGUF only, hub snapshots pinned."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.datasets import Store
from tasks.errors import ModelError
from tasks.inference.models import detect_kind, resolve
from tasks.inference.weights import HASH_CACHE_FILE
from tasks.run import stages, steps
from tasks.run.plan import make_plan
from tasks.run.shards import Shard


def test_kinds_are_detected_from_configuration(tiny_bert_classifier, tiny_embedder, tiny_bart, tiny_llama) -> None:
    assert detect_kind(Path(tiny_bert_classifier)) == "sequence-classification"
    assert detect_kind(Path(tiny_embedder)) == "embedding"
    assert detect_kind(Path(tiny_bart)) == "seq2seq"
    assert detect_kind(Path(tiny_llama)) == "decoder"


def test_roles_are_checked(tiny_bert_classifier, tiny_llama, tiny_bart) -> None:
    assert resolve(tiny_bert_classifier, "classifier").kind == "sequence-classification"
    assert resolve(tiny_llama, "summarizer").max_input_tokens == 512
    assert resolve(tiny_llama, "classifier").kind == "decoder"  # zero-shot by label likelihood
    with pytest.raises(ModelError, match=r"a summarizer must be one of"):
        resolve(tiny_bert_classifier, "summarizer")
    with pytest.raises(ModelError, match="a classifier must be one of"):
        resolve(tiny_bart, "classifier")


def test_unknown_models_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        resolve("no-such-org/no-such-model-xyz", "classifier")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve(str(tmp_path / "empty"), "classifier")


def test_fingerprint_changes_with_the_model(tiny_bert_classifier, tiny_embedder) -> None:
    a = resolve(tiny_bert_classifier, "classifier")
    b = resolve(tiny_embedder, "classifier")
    assert a.fingerprint != b.fingerprint
    assert resolve(tiny_bert_classifier, "classifier").fingerprint == a.fingerprint


def test_default_classifier_is_the_packaged_minilm() -> None:
    ref = resolve("default", "classifier")
    assert ref.kind == "embedding"
    assert ref.max_input_tokens == 256  # trained length, not the 512 positions


def test_default_decoder_is_the_default_summarizers_model_in_either_role() -> None:
    as_classifier = resolve("default-decoder", "classifier")
    assert as_classifier.kind == "decoder"
    assert as_classifier == resolve("default", "summarizer") == resolve("default-decoder", "summarizer")


def _copy_with_other_bytes(source: str, target: Path) -> Path:
    """The model under `target` with weight bytes changed but every size kept: the safetensors
    header is left alone and the last tensor byte is flipped."""
    shutil.copytree(source, target)
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    return target


def test_fingerprint_is_the_content_not_the_name_or_size(tmp_path: Path, tiny_bert_classifier: str) -> None:
    first = Path(shutil.copytree(tiny_bert_classifier, tmp_path / "a" / "clf"))
    second = _copy_with_other_bytes(tiny_bert_classifier, tmp_path / "b" / "clf")
    assert (first / "model.safetensors").stat().st_size == (second / "model.safetensors").stat().st_size
    a, b = resolve(str(first), "classifier"), resolve(str(second), "classifier")
    assert a.name == b.name == "clf" and a.fingerprint != b.fingerprint
    plans = [make_plan(str(d), None, None, 64, 8, 8, None) for d in (first, second)]
    assert plans[0].config_id != plans[1].config_id
    # Moved elsewhere under the same name: the same model. Renamed: the same fingerprint (the
    # name is no part of it), but results are stored under the name, so another config_id.
    moved = resolve(str(shutil.copytree(first, tmp_path / "c" / "clf")), "classifier")
    assert moved.fingerprint == a.fingerprint
    assert make_plan(str(tmp_path / "c" / "clf"), None, None, 64, 8, 8, None).config_id == plans[0].config_id
    renamed = resolve(str(shutil.copytree(first, tmp_path / "c" / "other")), "classifier")
    assert renamed.fingerprint == a.fingerprint and renamed.short_id != a.short_id


def test_a_model_with_other_weights_runs_again(tmp_path: Path, tiny_bert_classifier: str) -> None:
    """The probe of issue 14: the second model's labels are computed, not taken from the first."""
    inbox, data = tmp_path / "inbox", str(tmp_path / "data")
    inbox.mkdir()
    (inbox / "a.txt").write_text("The committee met on Tuesday to discuss the budget. " * 20)
    models = [
        Path(shutil.copytree(tiny_bert_classifier, tmp_path / "a" / "clf")),
        _copy_with_other_bytes(tiny_bert_classifier, tmp_path / "b" / "clf"),
    ]
    classified = []
    for model in models:
        plan = make_plan(str(model), None, None, 64, 8, 8, None)
        assert plan.classifier and plan.classifier_segments
        shard = Shard(0, tuple(steps.step_ingest(Store(data), [str(inbox)], "r").doc_ids))
        stages.segment(Store(data), plan, shard, "r")
        classified.append(stages.classify(Store(data), plan, shard, "r", "cpu", None).segments_classified)
    assert classified[0] == classified[1] > 1
    labels = Store(data).read("segment_labels", columns=["model"]).column("model").to_pylist()
    assert len(set(labels)) == 2 and len(labels) == 2 * classified[0]


def test_weight_hashes_are_cached_by_path_size_and_mtime(tmp_path: Path, tiny_bert_classifier: str) -> None:
    model, cache = Path(shutil.copytree(tiny_bert_classifier, tmp_path / "clf")), tmp_path / "cache"
    first = resolve(str(model), "classifier", cache).fingerprint
    entries = json.loads((cache / HASH_CACHE_FILE).read_text())
    key = str((model / "model.safetensors").resolve())
    assert entries[key][2] == hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    entries[key][2] = "0" * 64  # the cache is believed while path, size and mtime hold ...
    (cache / HASH_CACHE_FILE).write_text(json.dumps(entries))
    assert resolve(str(model), "classifier", cache).fingerprint != first
    os.utime(model / "model.safetensors", ns=(1, 1))  # ... and not once the file's mtime moves
    assert resolve(str(model), "classifier", cache).fingerprint == first
    for garbage in ("{not json", "[1, 2]", '{"x": 3}', ""):  # a corrupt cache is hashed over, then mended
        (cache / HASH_CACHE_FILE).write_text(garbage)
        assert resolve(str(model), "classifier", cache).fingerprint == first
    assert key in json.loads((cache / HASH_CACHE_FILE).read_text())
    assert [p.name for p in cache.iterdir()] == [HASH_CACHE_FILE]  # no temporary file left


def test_pickle_weights_are_refused(tmp_path: Path, tiny_bert_classifier: str) -> None:
    model = Path(shutil.copytree(tiny_bert_classifier, tmp_path / "clf"))
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    with pytest.raises(ModelError, match=r"only pickle weights \(pytorch_model\.bin\).*safetensors or GGUF") as err:
        resolve(str(model), "classifier")
    assert "\n" not in str(err.value)
    (model / "pytorch_model.bin").unlink()
    with pytest.raises(ModelError, match="no weight files"):
        resolve(str(model), "classifier")


def test_pickle_weights_are_one_line_at_the_cli(tmp_path: Path, tiny_bert_classifier: str) -> None:
    model = Path(shutil.copytree(tiny_bert_classifier, tmp_path / "clf"))
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    (tmp_path / "a.txt").write_text("Some text.")
    env = {**os.environ, "LONGDOC_CACHE_DIR": str(tmp_path / "cache"), "PREFECT_HOME": str(tmp_path / "prefect")}
    args = ["run", str(tmp_path / "a.txt"), "--data-dir", str(tmp_path / "data"), "--classifier", str(model)]
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args, "--no-summarize"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("longdoc: error: model 'clf' has only pickle weights") and out.stderr.count("\n") == 1
    assert not (tmp_path / "data").exists()  # refused before anything ran


def test_hub_models_are_pinned_and_offline_forbids_downloads(
    tmp_path: Path, tiny_bert_classifier: str, monkeypatch
) -> None:
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--some-org--clf"
    shutil.copytree(tiny_bert_classifier, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    ref = resolve("some-org/clf", "classifier")
    assert ref.revision == commit and Path(ref.path).name == commit and ref.name == "some-org/clf"
    assert ref.fingerprint == resolve(tiny_bert_classifier, "classifier").fingerprint  # the same files
    for variable in ("LONGDOC_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv("LONGDOC_OFFLINE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv(variable, "1")
        with pytest.raises(ModelError) as err:
            resolve("some-org/not-cached", "classifier")
        cache = "is not in the local Hugging Face cache"
        assert str(err.value) == f"model 'some-org/not-cached' {cache} and {variable}=1 forbids downloading it"


def test_default_summarizer_is_qwen_and_smollm2_stays_by_name(tiny_llama, monkeypatch, tmp_path: Path) -> None:
    import tasks.inference.models as models

    asked: list[Path] = []

    def converted(cache_dir: Path) -> Path:  # the 2-minute conversion is tested in test_packaged
        asked.append(cache_dir)
        return Path(tiny_llama)

    monkeypatch.setattr(models, "converted_qwen", converted)
    ref = resolve("default", "summarizer", tmp_path)
    assert ref.name == "Qwen2.5-Coder-0.5B-Instruct" and ref.kind == "decoder" and asked == [tmp_path]
    assert resolve("qwen2.5-coder-0.5b", "summarizer", tmp_path).fingerprint == ref.fingerprint
    smol = resolve("smollm2", "summarizer")  # the packaged GGUF, converted into the user's cache once
    assert smol.name == "SmolLM2-135M-Instruct" and smol.kind == "decoder"
    assert smol.fingerprint != ref.fingerprint
