"""The CLI over a real lake: formats, read-only errors, runs, and queries during writes."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.cli import main
from storage import warehouse
from storage.datasets import Store
from tasks.run.results import IngestResult, RunResults
from tasks.run.steps import new_run_id, step_record_run
from tests.conftest import document_row


def _doc(doc_id: str) -> dict:
    return document_row(doc_id, f"text of {doc_id}")


@pytest.fixture
def data(tmp_path: Path) -> str:
    root = str(tmp_path / "data")
    Store(root).add("documents", [_doc("a"), _doc("b")])
    step_record_run(
        Store(root),
        new_run_id(),
        None,
        "cfg",
        datetime.now(UTC),
        {"inputs": ["x"]},
        RunResults(ingest=IngestResult(documents=2, documents_new=2, rejects=0, seconds=0.1)),
        "completed",
    )
    return root


def test_formats(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["query", "SELECT doc_id, n_chars FROM documents ORDER BY 1", "--data-dir", data, "--format", "json"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == [{"doc_id": "a", "n_chars": 9}, {"doc_id": "b", "n_chars": 9}]
    assert main(["query", "SELECT doc_id FROM documents ORDER BY 1", "--data-dir", data, "--format", "csv"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [["doc_id"], ["a"], ["b"]]
    assert main(["query", "SELECT doc_id FROM documents ORDER BY 1", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert "doc_id" in out and "(2 rows)" in out


def test_writes_and_bad_sql_are_one_line_errors(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    for statement in ("DELETE FROM documents", "DROP TABLE runs", "SELEC 1", "SELECT nope FROM documents"):
        assert main(["query", statement, "--data-dir", data]) == 2
        err = capsys.readouterr().err
        assert err.startswith("longdoc: error: ") and err.count("\n") == 1, err
    main(["query", "SELECT count(*) AS n FROM documents", "--data-dir", data, "--format", "json"])
    assert json.loads(capsys.readouterr().out) == [{"n": 2}]  # nothing was lost


def test_runs_lists_recent_runs(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "(1 rows)" in out


def test_queries_during_writes_see_whole_snapshots(data: str) -> None:
    store = Store(data)
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(12):
                store.add("documents", [_doc(f"w{n}")])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while not done.is_set():
        seen.append(warehouse.query(store, "SELECT count(*) FROM documents")[1][0][0])
    thread.join()
    assert not errors
    assert seen == sorted(seen) and seen[0] >= 2
    assert warehouse.query(store, "SELECT count(*) FROM documents")[1] == [(14,)]


def test_input_limits_are_checked_and_passed_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.params import ProcessParams

    assert main(["run", str(tmp_path), "--data-dir", str(tmp_path / "d"), "--max-pages", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("longdoc: error: max_pages") and err.count("\n") == 1
    limits = ProcessParams(inputs=["x"], max_document_mb=0.5, max_pages=3).limits()
    assert (limits.max_document_bytes, limits.max_pages) == (512 * 1024, 3)


def test_a_run_on_a_temporary_server_sends_no_heartbeats() -> None:
    """Without PREFECT_API_URL nothing outlives the run to watch its heartbeats; with a server of
    one's own, Prefect's flow engine keeps sending them."""
    from prefect import flow
    from prefect.flow_engine import FlowRunEngine
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.launch import flow_run_settings

    engine = FlowRunEngine(flow=flow(lambda: None, name="probe"))
    with temporary_settings(updates={PREFECT_API_URL: None}), flow_run_settings():
        assert engine.heartbeat_seconds is None
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        expected = engine.heartbeat_seconds
        with flow_run_settings():
            assert engine.heartbeat_seconds == expected
    assert expected is not None and expected > 0


def test_requests_are_refused_not_changed(
    tmp_path: Path, tiny_bert_classifier: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An overlap the segmenter cannot honour and empty labels are one-line errors, at the CLI
    and in the parameters deployments pass; nothing is clamped or defaulted instead."""
    from pydantic import ValidationError

    from flows.params import ProcessParams
    from tasks.errors import ConfigError

    run = ["run", str(tmp_path), "--data-dir", str(tmp_path / "d"), "--classifier", tiny_bert_classifier]
    refused = {
        ("--max-tokens", "64", "--overlap-tokens", "64"): "--overlap-tokens 64 is not less than --max-tokens 64",
        # the tiny BERT adds [CLS] and [SEP]: 62 tokens of text, of which at most half overlap
        ("--max-tokens", "64", "--overlap-tokens", "32"): "--overlap-tokens 32 is too large for",
        ("--labels", ""): "--labels is empty",
        ("--labels", " , "): "--labels is empty",
    }
    for options, message in refused.items():
        assert main([*run, "--no-summarize", *options]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"longdoc: error: {message}") and err.count("\n") == 1, err
        if "32" in options:
            budget = "62 tokens of text (64 less 2 of the model's own), and the overlap may be at most half, 31"
            assert err.endswith(f"{budget}\n"), err
    with pytest.raises(ValidationError, match="--labels is empty"):
        ProcessParams(inputs=["x"], labels=[])
    params = {"inputs": ["x"], "classifier": tiny_bert_classifier, "summarize": False, "max_tokens": 64}
    with pytest.raises(ConfigError, match=r"may be at most half, 31$"):
        ProcessParams(**params, overlap_tokens=32).make_plan()
    plan = ProcessParams(**params, overlap_tokens=31).make_plan()
    assert plan.classifier_segments and plan.classifier_segments.overlap_tokens == 31  # as asked


def test_an_unreachable_data_directory_is_one_line_before_the_run(
    tmp_path: Path, tiny_bert_classifier: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object store nobody answers at (a closed loopback port): the S3 client's own retries,
    then one line naming the data directory, before Prefect starts (~13 s of those retries)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    data = f"s3://bucket/data?endpoint_override=127.0.0.1:{port}&scheme=http"
    run = ["run", str(tmp_path), "--data-dir", data, "--classifier", tiny_bert_classifier, "--no-summarize"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"longdoc: error: cannot write {data}: ") and err.count("\n") == 1, err


# `longdoc run`'s options as they were spelled before they came from the parameter model: a
# public contract (DESIGN.md, "User interface"), so this list is written out, not derived.
RUN_OPTIONS = {
    "--data-dir": "'./longdoc-data'",
    "--catalog": None,
    "--labels": None,
    "--classifier": "'default'",
    "--classifier-fallback": "'default-decoder'",
    "--unk-threshold": "0.1",
    "--summarizer": "'default'",
    "--max-tokens": None,
    "--overlap-tokens": None,
    "--max-new-tokens": "80",
    "--device": "'auto'",
    "--engine": "'transformers'",
    "--no-classify": "yes",
    "--no-summarize": "yes",
    "--redact": "no",
    "--redact-phone-regions": "['US', 'CN']",
    "--max-document-mb": "64",
    "--max-pages": "2000",
    "--task-runner": "'threads'",
    "--workers": "1",
    "--compact": "no",
    "--retain-days": "7.0",
    "--merge-files-over": "128",
    "--shard-documents": "2000",
}


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines at the terminal's width


@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_every_parameter_is_an_option_with_its_default(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from flows.params import ProcessParams

    monkeypatch.delenv("LONGDOC_DATA_DIR", raising=False)
    monkeypatch.delenv("LONGDOC_CATALOG", raising=False)
    text = _help(command, capsys)
    assert set(re.findall(r"\[(--[a-z-]+)", text)) == set(RUN_OPTIONS)  # no option lost, renamed or added
    assert "--cache-dir" not in text  # a deployment's setting only
    assert "--device {auto,cpu,cuda}" in text
    for name, field in ProcessParams.model_fields.items():
        if name in ("inputs", "cache_dir"):
            continue
        flag = "--" + ("no-" if field.default is True else "") + name.replace("_", "-")
        assert flag in RUN_OPTIONS, flag
        described = re.search(re.escape(flag) + r"(?: [A-Z_]+| \{[a-z,]+\})? (.*?)(?= --|$)", text.split("options:")[1])
        assert described, flag
        help_text = described.group(1)
        assert help_text.startswith((field.description or "").removesuffix(".")), (flag, help_text)
        default = RUN_OPTIONS[flag]
        assert (f"(default: {default})" in help_text) if default else "(default" not in help_text, (flag, help_text)


def test_options_fill_the_parameters(tmp_path: Path, tiny_bart: str) -> None:
    from flows.cli import _parser
    from flows.launch import make_params
    from flows.params import ProcessParams

    data = str(tmp_path / "d")
    options = ["--data-dir", data, "--summarizer", tiny_bart, "--max-new-tokens", "5", "--no-classify"]
    more = [
        "--labels",
        " a, b",
        "--device",
        "cpu",
        "--engine",
        "transformers",
        "--max-tokens",
        "64",
        "--overlap-tokens",
        "8",
    ]
    more += ["--max-document-mb", "1.5", "--max-pages", "7", "--task-runner", "dask", "--workers", "3"]
    more += ["--classifier-fallback", "none", "--unk-threshold", "0.25"]
    more += ["--redact", "--redact-phone-regions", "gb, CN"]
    args = _parser().parse_args(["run", "x", "y", *options, *more, "--shard-documents", "9"])
    launched = make_params(args, args.inputs)
    assert not isinstance(launched, int)
    params, plan = launched
    assert isinstance(params, ProcessParams)
    assert params.model_dump() == {
        "inputs": ["x", "y"],
        "data_dir": data,
        "labels": ["a", "b"],
        "classifier": "default",
        "classifier_fallback": "none",
        "unk_threshold": 0.25,
        "summarizer": tiny_bart,
        "max_tokens": 64,
        "overlap_tokens": 8,
        "max_new_tokens": 5,
        "max_document_mb": 1.5,
        "max_pages": 7,
        "device": "cpu",
        "classify": False,
        "summarize": True,
        "redact": True,
        "redact_phone_regions": ["GB", "CN"],
        "engine": "transformers",
        "cache_dir": None,
        "task_runner": "dask",
        "workers": 3,
        "shard_documents": 9,
        "catalog": None,
        "compact": False,
        "retain_days": 7.0,
        "merge_files_over": 128,
    }
    assert plan == params.make_plan() and plan.summarizer and plan.summarizer.max_new_tokens == 5
    assert plan.classifier is None  # --no-classify: the plan the flow gets says so


def test_defaults_are_the_models_and_evaluate_labels_stand_in(
    tmp_path: Path, tiny_bart: str, tiny_bert_classifier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import _parser
    from flows.launch import make_params
    from flows.params import ProcessParams

    data = str(tmp_path / "env-data")
    monkeypatch.setenv("LONGDOC_DATA_DIR", data)
    args = _parser().parse_args(["run", "x", "--no-classify", "--summarizer", tiny_bart])
    launched = make_params(args, args.inputs)
    assert not isinstance(launched, int)
    params = launched[0]
    expected = ProcessParams(inputs=["x"], classify=False, summarizer=tiny_bart)
    assert params == expected and params.data_dir == data
    assert (params.max_new_tokens, params.max_document_mb, params.max_pages, params.shard_documents) == (
        80,
        64,
        2000,
        2000,
    )
    assert _parser().parse_args(["query", "SELECT 1"]).data_dir == data
    # `evaluate` names the file's classes when --labels is not given; --labels wins when it is
    evaluate = ["evaluate", "f.jsonl", "--no-summarize", "--classifier", tiny_bert_classifier]
    for given, labels in (([], ["x", "y"]), (["--labels", "p,q"], ["p", "q"])):
        parsed = _parser().parse_args([*evaluate, *given])
        launched = make_params(parsed, [parsed.data], ["x", "y"])
        assert not isinstance(launched, int)
        params = launched[0]
        assert (params.labels, params.inputs, params.summarize, params.classify) == (labels, ["f.jsonl"], False, True)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="needs a machine without vllm")
def test_engine_vllm_without_vllm_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    data = tmp_path / "data"
    for args, env in ((["--engine", "vllm"], None), ([], "vllm")):
        if env:
            monkeypatch.setenv("LONGDOC_ENGINE", env)
        assert main(["run", str(tmp_path / "a.txt"), "--data-dir", str(data), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "--engine vllm needs the vllm package" in err and "\n" not in err
    assert not data.exists()  # nothing started
