"""`longdoc run --redact` through Prefect, in a process of its own with a fresh PREFECT_HOME and
data directory: afterwards no original value of the generated corpus lies anywhere in the data
directory (the lake: data files and catalog), the Prefect home (its database: flow and task runs,
logs, artifacts; its result storage), the model cache, or the captured output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import sql
from tests.tasks.redact.corpus import DECOYS, leaks, make_corpus

pytestmark = pytest.mark.prefect


def test_longdoc_run_redact_leaves_no_value_behind(tmp_path: Path, tiny_bert_classifier: str, tiny_bart: str) -> None:
    corpus = make_corpus(seed=7, documents=3)
    inbox, data, home = corpus.write(tmp_path / "inbox"), tmp_path / "data", tmp_path / "prefect"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    args = ["run", str(inbox), "--data-dir", str(data), "--redact", "--classifier", tiny_bert_classifier]
    args += ["--summarizer", tiny_bart, "--max-tokens", "120", "--overlap-tokens", "12", "--max-new-tokens", "6"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    (tmp_path / "output.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # it did redact, and went through every stage
    counts = sql("SELECT type, sum(count) AS n FROM redactions GROUP BY type", data, env)
    assert {r["type"] for r in counts} >= {"email", "phone", "card", "iban", "national_id", "ip", "url_credentials"}
    assert sql("SELECT count(*) AS n FROM document_results WHERE summary IS NOT NULL", data, env)[0]["n"] > 0
    texts = " ".join(r["text"] for r in sql("SELECT text FROM documents", data, env))
    assert all(decoy in texts for decoy in DECOYS)
    (run,) = sql("SELECT parameters FROM runs", data, env)
    assert json.loads(run["parameters"])["redact"] is True
    assert any(p.name.endswith(".db") for p in home.rglob("*"))  # the search below reads Prefect's database

    searched = [data, home, tmp_path / "output.log"] + [p for p in [tmp_path / "cache"] if p.exists()]
    assert leaks(searched, list(corpus.values)) == {}
