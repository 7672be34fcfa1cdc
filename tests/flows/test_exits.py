"""Clean exits, with real `longdoc run` processes: SIGTERM stops a run within seconds at any stage,
inference included, and leaves no process behind (Prefect's temporary server included); an
error no retry can fix is not retried and ends as one line naming the path; a run whose writes
failed is recorded as failed, never completed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.datasets import Store, StoreWriteError
from tasks.errors import Cancelled, ModelError
from tasks.inference.engine import BatchLimits, Cancellation, run_batched
from tests.conftest import document_row

ROOT = Path(__file__).resolve().parents[2]


def run_env(tmp_path: Path) -> dict[str, str]:
    """A fresh Prefect home and no PREFECT_API_URL: the run starts its own temporary server."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return env | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }


def start_run(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    """`longdoc run` in a session of its own (its id is the run's pid); stderr goes to a file."""
    err = tmp_path / "stderr.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", *args],
        cwd=ROOT,
        env=run_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
        start_new_session=True,
    )
    return process, err


def session_members(session: int) -> dict[int, str]:
    """The live processes of a session (pid: command line), read from /proc."""
    members = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == session:
                members[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # it ended while being read
    return members


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the point to interrupt it"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt it"
        time.sleep(0.05)


def terminate(process: subprocess.Popen[bytes]) -> tuple[int, float, dict[int, str]]:
    """SIGTERM to the run's own process (as a service manager or `kill` sends it): its exit
    code, the seconds it took to exit, and what of its session outlived it (killed here)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = -1
    seconds = time.monotonic() - sent
    time.sleep(0.5)  # a child the run stopped has had time to exit
    survivors = session_members(process.pid)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return code, seconds, survivors


@pytest.mark.prefect
@pytest.mark.processes
def test_sigterm_stops_a_run_at_any_stage_and_its_temporary_server(tmp_path: Path, tiny_llama: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # thousands of segments with 100 new tokens each: minutes of generation, ~1 s per batch of 8.
    text = "\n\n".join(f"Paragraph {i} tells how the library budget grew in year {2000 + i}." for i in range(3000))
    (inbox / "long.txt").write_text(text, encoding="utf-8")
    data = tmp_path / "data"
    args = [str(inbox), "--data-dir", str(data), "--no-classify", "--summarizer", tiny_llama]
    # The tiny model reads 512 tokens: its language prompt takes ~300, 100 new tokens leave ~110 of text.
    args += ["--max-new-tokens", "100", "--overlap-tokens", "10"]

    # 1. In the middle of summarization: one batch done, hundreds to go.
    process, err = start_run(tmp_path, args)
    wait_for(lambda: "summarize: " in err.read_text(errors="replace"), process)
    code, seconds, survivors = terminate(process)
    log = err.read_text(errors="replace")
    assert code == 128 + signal.SIGTERM, log[-3000:]
    assert seconds < 15, f"the run took {seconds:.1f} s to stop"
    assert not survivors, f"processes of the run survived it: {survivors}"
    assert "longdoc: interrupted" in log.splitlines() and "Traceback" not in log, log[-3000:]
    runs = Store(str(data)).read("runs").to_pylist()
    assert [r["status"] for r in runs] == ["cancelled"] and "SIGTERM" in runs[0]["error"]
    assert Store(str(data)).read("segment_summaries").num_rows == 0  # no summary of a cut-short stage

    # 2. While the temporary server starts, before the flow begins (it would be an orphan).
    process, err = start_run(tmp_path, args)
    wait_for(lambda: any("uvicorn" in m for m in session_members(process.pid).values()), process)
    code, seconds, survivors = terminate(process)
    assert code == 128 + signal.SIGTERM and seconds < 15, (code, seconds, err.read_text(errors="replace")[-3000:])
    assert not survivors, f"Prefect's temporary server survived the run: {survivors}"
    assert "longdoc: interrupted" in err.read_text(errors="replace").splitlines()


@pytest.mark.prefect
def test_an_unwritable_data_directory_fails_once_in_one_line(tmp_path: Path, tiny_bert_classifier: str) -> None:
    """Tests run as root, for whom permission bits stop nothing; sysfs refuses even root a new
    file (EACCES, or EROFS where /sys is mounted read-only), so the lake's documents folder
    is pointed there: the data directory itself is writable (the run starts), ingest's write
    of a data file is not (more documents than the catalog inlines)."""
    inbox, data = tmp_path / "inbox", tmp_path / "data"
    inbox.mkdir()
    (data / "main").mkdir(parents=True)
    for i in range(30):
        (inbox / f"a{i}.txt").write_text(f"The committee met on day {i} to discuss the budget.", encoding="utf-8")
    (data / "main" / "documents").symlink_to("/sys/kernel", target_is_directory=True)
    args = [str(inbox), "--data-dir", str(data), "--classifier", tiny_bert_classifier, "--no-summarize"]
    process, err = start_run(tmp_path, args)
    code = process.wait(timeout=300)
    log = err.read_text(errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("longdoc: error:")]
    reasons = ("Permission denied", "Read-only file system")
    assert code == 2 and len(errors) == 1 and any(r in errors[0] for r in reasons), log[-3000:]
    assert errors[0].startswith(f"longdoc: error: cannot commit to the lake at {data}: "), errors
    assert "Traceback" not in log and "Retry" not in log, log[-3000:]
    attempts = [line for line in log.splitlines() if "Task run 'ingest-" in line and "ingest: " not in line]
    assert len(attempts) == 1, log[-3000:]  # one attempt, one line (besides its progress line)
    assert [r["status"] for r in Store(str(data)).read("runs").to_pylist()] == ["failed"]


def test_errors_no_retry_can_fix_are_not_retried(tmp_path: Path) -> None:
    from prefect.states import Failed

    from flows.process import RETRIES

    def retried(exc: BaseException) -> bool:
        return bool(RETRIES["retry_condition_fn"](None, None, Failed(data=exc)))

    store = Store(str(tmp_path))
    store.read("documents")  # the lake made; then its documents' folder pointed at sysfs (see above)
    (tmp_path / "main" / "documents").symlink_to("/sys/kernel", target_is_directory=True)
    rows = [document_row(f"d{i}", "text") for i in range(100)]  # more than the catalog inlines
    with pytest.raises(StoreWriteError, match=f"^cannot commit to the lake at {tmp_path}: ") as caught:
        store.add("documents", rows)
    assert not retried(caught.value)
    for permanent in (errno.ENOSPC, errno.EACCES, errno.EROFS):
        assert not retried(OSError(permanent, os.strerror(permanent)))
    assert not retried(ModelError("the loader refused the weights"))
    assert retried(OSError(errno.EIO, "Input/output error")) and retried(RuntimeError("flaky"))


class CancelledAfter(Cancellation):
    """A cancellation requested once it has been looked at `reads` times: a signal that lands
    in the middle of a generation, at a known decode step."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.reads_left = reads

    @property
    def requested(self) -> bool:
        self.reads_left -= 1
        if self.reads_left == 0:
            self.request("interrupted by SIGTERM")
        return super().requested


def test_generation_stops_at_the_next_decode_step(tiny_llama: str) -> None:
    from tasks.inference.models import resolve
    from tasks.summarize.summarize import SummarizerSpec, summarize_texts

    spec = SummarizerSpec(resolve(tiny_llama, "summarizer", None), max_new_tokens=200)
    texts = ["The committee met on Tuesday to discuss the budget."] * 3
    cancel = CancelledAfter(reads=5)  # read once per decode step
    with pytest.raises(Cancelled, match="SIGTERM"):
        summarize_texts(spec, texts, "cpu", cancel=cancel)
    assert cancel.reads_left == 0  # generation ended at that step, not 195 steps later
    done: list[int] = []
    with pytest.raises(Cancelled):  # asked before: not one batch runs
        run_batched([1, 2, 3], lambda batch: done.extend(batch) or batch, BatchLimits(2, 1), cancel=cancel)
    assert done == []
