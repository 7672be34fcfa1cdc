"""The report: real runs (the shard pipeline without Prefect, tests/stage_runner.py) read back
through the query API; the page rendered by a real headless Chromium; hostile strings escaped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from storage.datasets import Store
from tasks.report import ReportError, build_report, previous_documents
from tasks.report.data import DocumentView, ReportData, Segment
from tasks.report.page import report_html
from tests.helpers import DOCS

HOSTILE = "<script>alert(1)</script></svg><img src=x onerror=alert(2)>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TITLES = ["Label mix of the run", "Label mix over past runs", "Segments along the text, coloured by label"]
TITLES += ["Time per stage", "Rejected inputs by reason"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_bert_classifier: str, tiny_llama: str) -> Path:
    """Two completed runs over one inbox: three documents, a record whose title is hostile, an
    unreadable PDF (a reject); the second run adds one document."""
    from tests.stage_runner import run

    root = tmp_path_factory.mktemp("report")
    inbox, data = root / "inbox", root / "data"
    inbox.mkdir()
    for name, text in DOCS.items():
        (inbox / name).write_text(text, encoding="utf-8")
    record = {"id": "r1", "title": HOSTILE, "text": "The budget meeting went long. " * 80}
    (inbox / "records.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all")
    run(str(data), str(inbox), tiny_bert_classifier, tiny_llama)
    (inbox / "late.txt").write_text(" ".join(["A late arrival about the library."] * 40), encoding="utf-8")
    run(str(data), str(inbox), tiny_bert_classifier, tiny_llama)
    return data


def test_report_reads_the_latest_run_and_its_history(two_runs: Path) -> None:
    report = build_report(Store(str(two_runs)))
    data = report.data
    runs = data.label_trend
    assert len(runs) == 2 and runs[-1][0] == data.run_id  # the latest run, and the one before it
    assert sum(runs[0][1].values()) == 4 and sum(runs[1][1].values()) == 1  # 4 results, then the new one
    assert data.label_mix == runs[1][1]
    assert set(data.label_mix) <= {"alpha", "beta", "gamma"}
    # broken.pdf did not change: the second run did not read it again, yet counts it, as its figures do
    assert data.rejects_by_reason == {"corrupt": 1} == data.counts["rejects_by_reason"]
    assert {"ingest", "segment", "classify"} <= set(data.stage_seconds)
    doc = data.document
    assert doc is not None and doc.title == "late" and data.documents == [(doc.doc_id, "late", doc.n_chars)]
    assert all(a.char_start <= b.char_start for a, b in zip(doc.segments, doc.segments[1:], strict=False))
    assert doc.segments[-1].char_end == doc.n_chars  # the strip covers the text to its end
    assert all(chart.png.startswith(b"\x89PNG") for chart in report.charts)
    inbox = str(two_runs.parent / "inbox")  # the end-of-run event's comparison: the run before, same inputs
    assert previous_documents(Store(str(two_runs)), data.run_id, [inbox]) == 4  # the first run: 3 files + 1 record
    assert previous_documents(Store(str(two_runs)), runs[0][0], [inbox]) is None  # nothing before the first
    assert previous_documents(Store(str(two_runs)), "a-run-not-recorded-yet", [inbox]) == 5  # the latest: 4 + late
    assert previous_documents(Store(str(two_runs)), data.run_id, [inbox + "/"]) is None


def test_report_of_an_earlier_run_and_a_chosen_document(two_runs: Path) -> None:
    store = Store(str(two_runs))
    first_run = build_report(store).data.label_trend[0][0]
    first = build_report(store, first_run)
    assert first.data.run_id == first_run and sum(first.data.label_mix.values()) == 4
    assert list(first.data.rejects_by_reason.values()) == [1]  # broken.pdf
    assert first.data.document and first.data.document.doc_id == first.data.documents[0][0]  # the longest
    assert first.data.documents[0][2] == max(n for _, _, n in first.data.documents)
    hostile = next(doc_id for doc_id, title, _ in first.data.documents if title == HOSTILE)
    chosen = build_report(store, first_run, hostile)
    assert chosen.data.document is not None and chosen.data.document.title == HOSTILE
    assert HOSTILE not in chosen.html and "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/svg&gt;" in chosen.html
    with pytest.raises(ReportError, match="no run"):
        build_report(store, "no-such-run' OR '1'='1")
    with pytest.raises(ReportError, match="no document"):
        build_report(store, first_run, "nope")


def hostile_data() -> ReportData:
    segment = Segment(0, 0, 50, HOSTILE, 0.9)
    return ReportData(
        run_id=HOSTILE,
        status=HOSTILE,
        started_at=None,
        config_id=HOSTILE,
        seconds=1.0,
        counts={"documents": HOSTILE, "rejects": 1},
        stage_seconds={"ingest": 0.5},
        label_mix={HOSTILE: 2, "$x^2$ & <b>": 1},
        label_trend=[(HOSTILE, {HOSTILE: 2})],
        rejects_by_reason={HOSTILE: 1},
        document=DocumentView(HOSTILE, HOSTILE, 100, HOSTILE, HOSTILE + "\n</div></body>", [segment]),
        documents=[(HOSTILE, HOSTILE, 100)],
    )


def test_every_string_from_the_data_is_escaped() -> None:
    from tasks.report.charts import report_charts

    data = hostile_data()
    html = report_html(data, report_charts(data))  # mathtext off: "$x^2$" draws, it does not raise
    for raw in ("<script", "</svg", "<img src=x", "</div></body>", "<b>"):
        assert raw not in html, raw
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;&lt;/svg&gt;") >= 6  # id, status, title, doc...
    assert not re.search(
        r"<(?!/?(html|head|meta|title|style|body|h1|h2|p|code|div|figure|img|figcaption|strong|table|tr|td|th)\b)",
        html[15:],
    )


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No network: the page must not need one; a proxy to nowhere makes any fetch fail.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--proxy-server=127.0.0.1:9"]
    flags += ["--hide-scrollbars", "--user-data-dir=" + str(cwd / "profile")]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_page_renders_in_headless_chromium(two_runs: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    page = tmp_path / "report.html"
    page.write_text(build_report(Store(str(two_runs))).html, encoding="utf-8")
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in TITLES:
        assert title in dom.stdout, title
    assert dom.stdout.count("data:image/png;base64,") == 5 and "http" not in dom.stdout.replace("http-equiv", "")

    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri(), cwd=tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 1600)
    assert ImageStat.Stat(image).var[0] > 200  # charts, not a blank page
    # The charts really drew: a blank (all white) copy of the same page has almost no variance.
    blank = tmp_path / "blank.html"
    blank.write_text(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page.read_text()), encoding="utf-8")
    chromium(f"--screenshot={tmp_path / 'blank.png'}", "--window-size=1200,1600", blank.as_uri(), cwd=tmp_path)
    assert ImageStat.Stat(Image.open(tmp_path / "blank.png").convert("L")).var[0] < ImageStat.Stat(image).var[0] / 3


def test_a_run_with_nothing_to_show_still_makes_a_page() -> None:
    from tasks.report.charts import report_charts

    data = replace(hostile_data(), label_mix={}, label_trend=[], rejects_by_reason={}, stage_seconds={}, document=None)
    html = report_html(data, report_charts(data))
    assert "The run has no document results." in html and html.count("<img") == 4


def test_the_report_command_writes_the_page_or_says_in_one_line_why_not(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    out = tmp_path / "report.html"
    assert main(["report", "--data-dir", str(two_runs), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert all(title in page for title in TITLES) and page.count("data:image/png;base64,") == 5
    assert main(["report", "no-such-run", "--data-dir", str(two_runs), "--out", str(tmp_path / "x.html")]) != 0
    err = capsys.readouterr().err.strip()
    assert err == "longdoc: error: no run no-such-run in the warehouse" and not (tmp_path / "x.html").exists()
