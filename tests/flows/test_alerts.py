"""Alerts against a real Prefect server (its triggers and actions services evaluate the
automations), installed by `longdoc alerts install` from deployments/automations.yaml, with a
webhook receiver on loopback recording every notification: a healthy run sends none; a
threshold breach, a failing run and a late nightly each send exactly one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import DOCS, prefect_api, prefect_server

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parents[2]
LATE_SECONDS = 10  # the least window a proactive trigger takes
SETTLE_SECONDS = 8  # after the expected notification, time for a second one that must not come


class Receiver:
    """A webhook on loopback: each POST's JSON body, in order."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def matching(self, word: str) -> list[dict[str, Any]]:
        return [n for n in self.received if word in n.get("subject", "")]

    def wait_for(self, word: str, timeout: float) -> list[dict[str, Any]]:
        """Notifications whose subject has `word`, once there is one (or the time is up), after
        SETTLE_SECONDS more for a duplicate to show."""
        deadline = time.monotonic() + timeout
        while not self.matching(word) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)
        return self.matching(word)


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Receiver]]:
    """A server whose triggers sweep closed windows within a second (instead of a minute), a
    receiver, and the shipped automations installed with a 10 s nightly window and thresholds
    a test run can break."""
    home = tmp_path_factory.mktemp("prefect-alerts")
    receiver = Receiver()
    config = yaml.safe_load((ROOT / "deployments" / "automations.yaml").read_text())
    config["longdoc"]["nightly"] = {"within_seconds": LATE_SECONDS}
    config["longdoc"]["thresholds"] = {"rejected_share_above": 0.3, "documents_vs_previous_below": 0.5}
    (home / "alerts.yaml").write_text(yaml.safe_dump(config))
    with prefect_server(home, PREFECT_SERVER_EVENTS_EXPIRED_BUCKET_BUFFER="PT1S") as env:
        for _ in range(2):  # installing again replaces, never duplicates
            installed = longdoc(
                "alerts", "install", "--webhook-url", receiver.url, "--file", str(home / "alerts.yaml"), env=env
            )
            assert installed.returncode == 0, installed.stdout + installed.stderr
        try:
            yield env, receiver
        finally:
            receiver.server.shutdown()


def longdoc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=400
    )


def finished_events(env: dict[str, str], run_filter: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found = prefect_api(env, "/events/filter", {"filter": {"event": {"name": ["longdoc.run.finished"]}}, "limit": 50})
    return [e for e in found["events"] if run_filter(e)]


def test_install_makes_three_automations_and_the_thresholds(alerts: tuple[dict[str, str], Receiver]) -> None:
    env, _ = alerts
    names = sorted(a["name"] for a in prefect_api(env, "/automations/filter", {}))
    assert names == ["longdoc-data-quality", "longdoc-nightly-late", "longdoc-run-failed"]
    variable = prefect_api(env, "/variables/name/longdoc_alert_thresholds")
    assert variable["value"] == {"rejected_share_above": 0.3, "documents_vs_previous_below": 0.5}
    late = prefect_api(env, "/automations/filter", {})
    assert next(a for a in late if a["name"] == "longdoc-nightly-late")["trigger"]["within"] == LATE_SECONDS


def test_a_healthy_run_sends_nothing_and_a_breach_sends_one(
    alerts: tuple[dict[str, str], Receiver], tmp_path: Path, tiny_bert_classifier: str
) -> None:
    env, receiver = alerts
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    inbox.mkdir()
    for name, text in DOCS.items():
        (inbox / name).write_text(text, encoding="utf-8")
    common = [str(inbox), "--data-dir", str(data), "--classifier", tiny_bert_classifier, "--no-summarize"]
    healthy = longdoc("run", *common, "--max-tokens", "300", "--overlap-tokens", "12", env=env)
    assert healthy.returncode == 0, healthy.stdout[-2000:] + healthy.stderr[-2000:]
    deadline = time.monotonic() + 30  # the event is in, so the automation has seen it
    while not (events := finished_events(env, lambda e: e["payload"]["data_dir"] == str(data))):
        assert time.monotonic() < deadline, "no longdoc.run.finished event"
        time.sleep(0.5)
    event = events[0]
    assert event["resource"]["longdoc.quality"] == "ok" and event["payload"]["documents"] == 3
    assert event["payload"]["rejected_share"] == 0 and event["payload"]["previous_documents"] is None
    roles = {r["prefect.resource.role"] for r in event["related"]}
    assert {"flow-run", "flow"} <= roles  # the flow run it came from
    flow_run_id = next(r["prefect.resource.id"] for r in event["related"] if r["prefect.resource.role"] == "flow-run")
    charts = prefect_api(
        env,
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [flow_run_id.removeprefix("prefect.flow-run.")]}}},
    )
    images = {a["key"]: a["data"] for a in charts if a["type"] == "image"}
    assert set(images) == {
        f"longdoc-chart-{k}" for k in ("label-mix", "label-trend", "segment-strip", "stage-time", "rejects")
    }
    assert all(url.startswith("data:image/png;base64,iVBOR") for url in images.values())  # a PNG, inline
    assert receiver.wait_for("longdoc", 5) == []

    for name in list(DOCS)[1:]:  # the next run: one document left, two unreadable inputs
        (inbox / name).unlink()
    (inbox / "a.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    (inbox / "b.pdf").write_bytes(b"%PDF-1.4 not a pdf either")
    breach = longdoc("run", *common, "--max-tokens", "300", "--overlap-tokens", "12", env=env)
    assert breach.returncode == 0, breach.stdout[-2000:] + breach.stderr[-2000:]
    sent = receiver.wait_for("data-quality", 60)
    assert len(sent) == 1, receiver.received
    assert "rejected share" in sent[0]["body"] and "documents vs previous run" in sent[0]["body"]
    assert receiver.matching("failed") == [] and len(receiver.received) == 1


def test_a_failing_run_sends_one(
    alerts: tuple[dict[str, str], Receiver], tmp_path: Path, tiny_bert_classifier: str
) -> None:
    env, receiver = alerts
    before = len(receiver.received)
    broken = tmp_path / "broken-classifier"  # loads its config and tokenizer; its weights fail in the flow
    shutil.copytree(tiny_bert_classifier, broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text(next(iter(DOCS.values())), encoding="utf-8")
    run = longdoc(
        "run", str(inbox), "--data-dir", str(tmp_path / "data"), "--classifier", str(broken), "--no-summarize", env=env
    )
    assert run.returncode != 0
    sent = receiver.wait_for("Failed", 60)
    assert len(sent) == 1, receiver.received[before:]
    assert len(receiver.received) == before + 1  # and no data-quality alert for a failed run
    events = finished_events(env, lambda e: e["payload"]["data_dir"] == str(tmp_path / "data"))
    assert [(e["payload"]["status"], e["resource"]["longdoc.quality"]) for e in events] == [("failed", "unchecked")]


@pytest.mark.xfail(
    reason="open bug: passes in the development checkout, but in a fresh clone (ci-local) the proactive "
    "late-nightly automation never fires (nothing received in 250 s); cause not found yet",
    strict=False,
)
def test_a_late_nightly_sends_one_and_an_on_time_one_none(alerts: tuple[dict[str, str], Receiver]) -> None:
    env, receiver = alerts
    before = len(receiver.received)
    flow = prefect_api(env, "/flows/", {"name": "process-documents"})
    deployment = prefect_api(env, "/deployments/", {"name": "nightly", "flow_id": flow["id"]})

    def nightly_run(states: list[str]) -> str:
        run = prefect_api(env, f"/deployments/{deployment['id']}/create_flow_run", {})
        for state in states:
            prefect_api(env, f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}, "force": True})
        return str(run["name"])

    on_time = nightly_run(["PENDING", "RUNNING", "COMPLETED"])
    late = nightly_run(["PENDING", "RUNNING"])  # never completes
    sent = receiver.wait_for("has not completed", LATE_SECONDS + 60)
    assert len(sent) == 1, receiver.received[before:]
    assert late in sent[0]["subject"] and on_time not in sent[0]["subject"]
    assert len(receiver.received) == before + 1
