"""Alerts against a real Prefect server (its triggers and actions services evaluate the
automations), installed by `longdoc alerts install` from deployments/automations.yaml, with a
webhook receiver on loopback recording every notification: a healthy run sends none; a
threshold breach, a failing run, a late nightly and a nightly that never runs each send exactly
one."""

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
SETTLE_SECONDS = 5  # after the expected notification, time for a second one that must not come
# The module's nightly period: no "nightly missing" alert while the other tests run (the last
# test installs a short one).
PERIOD_SECONDS = 3600


class Receiver:
    """A webhook on loopback: each POST's JSON body, in order."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.received_at: list[float] = []  # time.time() of each
        received, received_at = self.received, self.received_at

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                received_at.append(time.time())
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

    def wait_for(self, word: str, timeout: float, count: int = 1) -> list[dict[str, Any]]:
        """Notifications whose subject has `word`, once there are `count` (or the time is up),
        after SETTLE_SECONDS more for a duplicate to show."""
        deadline = time.monotonic() + timeout
        while len(self.matching(word)) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)
        return self.matching(word)


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Receiver]]:
    """A server that judges proactive triggers every second (instead of every 5 s), a
    receiver, and the shipped automations installed with a 10 s nightly window and thresholds
    a test run can break.

    The server keeps its default expired-bucket buffer (60 s): a shorter one lets the triggers
    service's sweep (every 5 s) delete a window that has just closed before the proactive
    evaluation judges it, and the nightly alerts then come or not by the two loops' phase."""
    home = tmp_path_factory.mktemp("prefect-alerts")
    receiver = Receiver()
    with prefect_server(home, PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY="PT1S") as env:
        for _ in range(2):  # installing again replaces, never duplicates
            install(env, receiver, home, period_seconds=PERIOD_SECONDS)
        try:
            yield env, receiver
        finally:
            receiver.server.shutdown()


def install(env: dict[str, str], receiver: Receiver, home: Path, period_seconds: float) -> None:
    """`longdoc alerts install` of the shipped file with test windows and thresholds."""
    config = yaml.safe_load((ROOT / "deployments" / "automations.yaml").read_text())
    config["longdoc"]["nightly"] = {"within_seconds": LATE_SECONDS, "period_seconds": period_seconds}
    config["longdoc"]["thresholds"] = {"rejected_share_above": 0.3, "documents_vs_previous_below": 0.5}
    (home / "alerts.yaml").write_text(yaml.safe_dump(config))
    installed = longdoc(
        "alerts", "install", "--webhook-url", receiver.url, "--file", str(home / "alerts.yaml"), env=env
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr


def longdoc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=400
    )


def nightly_run(env: dict[str, str], states: list[str]) -> str:
    """A run of the `nightly` deployment (made here: the server has no deployments) taken
    through `states`, as a worker would report them; its name."""
    flow = prefect_api(env, "/flows/", {"name": "process-documents"})
    deployment = prefect_api(env, "/deployments/", {"name": "nightly", "flow_id": flow["id"]})
    run = prefect_api(env, f"/deployments/{deployment['id']}/create_flow_run", {})
    for state in states:
        prefect_api(env, f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}, "force": True})
    return str(run["name"])


def finished_events(env: dict[str, str], run_filter: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found = prefect_api(env, "/events/filter", {"filter": {"event": {"name": ["longdoc.run.finished"]}}, "limit": 50})
    return [e for e in found["events"] if run_filter(e)]


def test_install_makes_four_automations_and_the_thresholds(alerts: tuple[dict[str, str], Receiver]) -> None:
    env, _ = alerts
    automations = {a["name"]: a for a in prefect_api(env, "/automations/filter", {})}
    assert len(automations) == 4 and sorted(automations) == [
        "longdoc-data-quality",
        "longdoc-nightly-late",
        "longdoc-nightly-missing",
        "longdoc-run-failed",
    ]
    variable = prefect_api(env, "/variables/name/longdoc_alert_thresholds")
    assert variable["value"] == {"rejected_share_above": 0.3, "documents_vs_previous_below": 0.5}
    assert automations["longdoc-nightly-late"]["trigger"]["within"] == LATE_SECONDS
    assert automations["longdoc-nightly-missing"]["trigger"]["within"] == PERIOD_SECONDS + LATE_SECONDS


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


def test_a_late_nightly_sends_one_and_an_on_time_one_none(alerts: tuple[dict[str, str], Receiver]) -> None:
    env, receiver = alerts
    before = len(receiver.received)
    on_time = nightly_run(env, ["PENDING", "RUNNING", "COMPLETED"])
    late = nightly_run(env, ["PENDING", "RUNNING"])  # never completes
    sent = receiver.wait_for("has not completed", LATE_SECONDS + 60)
    assert len(sent) == 1, receiver.received[before:]
    assert late in sent[0]["subject"] and on_time not in sent[0]["subject"]
    assert len(receiver.received) == before + 1


def test_a_nightly_that_never_runs_sends_one_and_a_completed_one_restarts_the_clock(
    alerts: tuple[dict[str, str], Receiver], tmp_path: Path
) -> None:
    """Installed afresh with a 1 s period (11 s window): no nightly run at all sends one alert,
    not before the window is over; a nightly completing in the next window restarts it."""
    env, receiver = alerts
    before = len(receiver.received)
    window = 1 + LATE_SECONDS
    installed_at = time.time()
    install(env, receiver, tmp_path, period_seconds=1)
    try:
        sent = receiver.wait_for("no nightly run", window + 60)
        assert len(sent) == 1, receiver.received[before:]
        assert len(receiver.received) == before + 1  # and no other alert
        assert receiver.received_at[before] >= installed_at + window
        assert "No nightly has completed since the alerts were installed" in sent[0]["body"]

        # The next window opened at the alert; a nightly completing in it starts a new one, so
        # the next alert comes a whole window after that run, and names it.
        completed_at = time.time()
        completed = nightly_run(env, ["PENDING", "RUNNING", "COMPLETED"])
        sent = receiver.wait_for("no nightly run", window + 60, count=2)
        assert len(sent) == 2, receiver.received[before:]
        assert receiver.received_at[-1] >= completed_at + window
        assert f"The last completed nightly: {completed} at" in sent[1]["body"]
        assert len(receiver.received) == before + 2
    finally:
        install(env, receiver, tmp_path, period_seconds=PERIOD_SECONDS)
