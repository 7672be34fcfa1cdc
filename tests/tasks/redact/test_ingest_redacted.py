"""A generated corpus full of personal values through a whole run (ingest with --redact, the
shard pipeline with tiny real models, the run record, the lake's catalog), without Prefect; then
a byte search of the data directory and the logs finds none of the values, while the same search
finds every one of them after a run without --redact (so the search can see them)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.params import ProcessParams
from storage.datasets import Store
from tasks.redact import TYPES
from tasks.run import steps
from tasks.run.pipeline import add_up, run_shard
from tasks.run.results import RunReport
from tests.tasks.redact.corpus import DECOYS, leaks, make_corpus


def whole_run(inbox: Path, data: Path, redact: bool, classifier: str, summarizer: str) -> RunReport:
    """One run as the flow runs it (the same calls as tests/stage_runner.py)."""
    params = ProcessParams(
        inputs=[str(inbox)],
        data_dir=str(data),
        classifier=classifier,
        summarizer=summarizer,
        max_tokens=120,
        overlap_tokens=12,
        max_new_tokens=6,
        device="cpu",
        redact=redact,
    )
    plan, store = params.make_plan(), Store(str(data))
    run_id, started = steps.new_run_id(), datetime.now(UTC)
    ingested = steps.step_ingest(store, params.inputs, run_id, params.limits(), params.redact_settings())
    shards = steps.step_shard(store, ingested.doc_ids, params.shard_documents)
    results = add_up([run_shard(store, plan, shard, run_id, "cpu") for shard in shards]).replace(ingest=ingested)
    return steps.step_record_run(store, run_id, None, plan.config_id, started, params.recorded(), results, "completed")


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory: pytest.TempPathFactory, tiny_bert_classifier: str, tiny_bart: str):
    root = tmp_path_factory.mktemp("redact")
    corpus = make_corpus()
    inbox = corpus.write(root / "inbox")
    logs: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(f"{record.getMessage()} {record.exc_text or ''}")  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        redacted = whole_run(inbox, root / "redacted", True, tiny_bert_classifier, tiny_bart)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    (root / "logs.txt").write_text("\n".join(logs), encoding="utf-8")
    plain = whole_run(inbox, root / "plain", False, tiny_bert_classifier, tiny_bart)
    return corpus, root, redacted, plain


def test_no_original_value_is_stored_anywhere(corpus_runs) -> None:
    corpus, root, redacted, _ = corpus_runs
    values = list(corpus.values)
    assert len(values) > 80 and set(corpus.values.values()) == set(TYPES)
    assert redacted.counts["documents"] == 14 and redacted.counts["rejects"] == 1  # the duplicate id
    assert (root / "redacted" / "catalog.ducklake").exists()  # the lake's catalog is searched too
    assert leaks([root / "redacted", root / "logs.txt"], values) == {}


def test_the_search_sees_every_value_without_redaction(corpus_runs) -> None:
    corpus, root, _, plain = corpus_runs
    found = leaks([root / "plain"], list(corpus.values))
    assert set(found) == set(corpus.values)
    assert plain.config_id != corpus_runs[2].config_id  # redaction is part of the configuration


def test_lookalikes_stay_and_placeholders_are_consistent(corpus_runs) -> None:
    _, root, _, _ = corpus_runs
    from urllib.parse import unquote

    rows = Store(str(root / "redacted")).read("documents").to_pylist()
    docs = {unquote(d["source_uri"]).split("/inbox/", 1)[1]: d for d in rows}
    for decoy in DECOYS:
        assert decoy in docs["en/case-0.txt"]["text"] and decoy in docs["web/contact.html"]["text"]
    assert "3.10.2" in docs["zh/工单-1.txt"]["text"] and "4111 1111 1111 1112" in docs["zh/工单-1.txt"]["text"]
    case = docs["en/case-0.txt"]["text"]
    assert case.startswith("Case 0. The customer wrote from [EMAIL_1] and asked us to call [PHONE_1] or [PHONE_2].")
    assert case.count("[EMAIL_1]") == 2 and "https://[URL_CREDENTIALS_1]@db.example.net/reports" in case
    assert "[CARD_2]" in case and "[IBAN_1]" in case and "[NATIONAL_ID_1]" in case and "[IP_2]" in case
    assert docs["web/contact.html"]["title"] == "Contact [EMAIL_2]"  # numbered after the text's
    record = docs["records/tickets.jsonl#[EMAIL_1]"]
    assert record["title"] == "[EMAIL_1]"
    meta = json.loads(record["metadata"])
    assert meta["id"] == "[EMAIL_1]" and meta["customer"]["email"] == "[EMAIL_2]"
    assert re.fullmatch(r"\[PHONE_\d\]", meta["customer"]["phones"][1])  # an int in the record
    assert "named/[EMAIL_1].txt" in docs
    # records named by different addresses keep URIs of their own (numbered per file)
    assert sorted(k for k in docs if k.startswith("records/")) == [
        f"records/tickets.jsonl#[EMAIL_{n}]" for n in range(1, 5)
    ]
    (reject,) = Store(str(root / "redacted")).read("rejects").to_pylist()
    assert (
        reject["source_uri"].endswith("tickets.jsonl#line-5") and reject["error"] == "id '[EMAIL_1]' is taken by line-1"
    )


def test_redactions_record_counts_and_spans_of_placeholders(corpus_runs) -> None:
    _, root, _, _ = corpus_runs
    texts = {d["doc_id"]: d["text"] for d in Store(str(root / "redacted")).read("documents").to_pylist()}
    rows = Store(str(root / "redacted")).read("redactions").to_pylist()
    assert {r["type"] for r in rows} == set(TYPES)
    for row in rows:
        spans = json.loads(row["spans"])
        assert row["count"] == len(spans) and row["doc_id"] in texts
        label = row["type"].upper()
        for start, end in spans:
            assert re.fullmatch(rf"\[{label}_\d+\]", texts[row["doc_id"]][start:end])
        # every placeholder of the type in the text is in the spans
        assert len(re.findall(rf"\[{label}_\d+\]", texts[row["doc_id"]])) == len(spans)
    segments = Store(str(root / "redacted")).read("segments").to_pylist()
    assert segments and all(texts[s["doc_id"]][s["char_start"] : s["char_end"]] == s["text"] for s in segments)


def test_the_same_file_with_and_without_redaction_is_two_documents(tmp_path: Path) -> None:
    from tasks.ingest.stage import ingest
    from tasks.redact import RedactSettings

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("Write to ann@example.com.", encoding="utf-8")
    (inbox / "b.txt").write_text("Nothing personal, version 3.10.2.", encoding="utf-8")
    store = Store(str(tmp_path / "data"))
    plain = ingest(store, [str(inbox)], "r1")
    again = ingest(store, [str(inbox)], "r2")
    assert again.files_unchanged == 2 and again.doc_ids == plain.doc_ids
    redacted = ingest(store, [str(inbox)], "r3", redaction=RedactSettings())
    assert redacted.files_unchanged == 0 and redacted.new_documents == 2  # read again, under other settings
    assert not set(redacted.doc_ids) & set(plain.doc_ids)  # b.txt too: its text is the same, not its identity
    assert ingest(store, [str(inbox)], "r4", redaction=RedactSettings()).files_unchanged == 2
    other = ingest(store, [str(inbox)], "r5", redaction=RedactSettings(phone_regions=("GB",)))  # a third identity
    assert other.files_unchanged == 0  # other settings: read again
    texts = sorted(d["text"] for d in store.read("documents").to_pylist())
    assert texts.count("Write to [EMAIL_1].") == 2 and texts.count("Write to ann@example.com.") == 1
