"""Real servers as separate processes, for the tests of many writers and several machines: a
PostgreSQL server (the lake's shared catalog), a Prefect server, a Dask scheduler and workers.
(The S3 server, moto, is the `s3` fixture of tests/conftest.py.)

Fixtures (registered by tests/conftest.py):
- `postgres` (session): a `PostgresServer` on a free loopback port, trust auth; skipped only
  where the PostgreSQL binaries are absent (a user's clone), never on CI (env CI).
- `postgres_catalog`: a fresh database on it, as `--catalog postgres:<conninfo>`.
- `prefect_server_env` (session): the environment that reaches one real Prefect server (and
  imports this checkout: PYTHONPATH).
- `dask_cluster_factory`: `start(env, workers=2) -> "tcp://127.0.0.1:PORT"`: a scheduler and workers,
  each its own process with `env` (PREFECT_API_URL, AWS_*, LONGDOC_CATALOG...), stopped after.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
PG_ROLE = "longdoc"


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl/psql: $LONGDOC_PG_BIN, else PATH, else Debian's newest."""
    if os.environ.get("LONGDOC_PG_BIN"):
        return Path(os.environ["LONGDOC_PG_BIN"])
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (Debian's package makes
    that user) or $LONGDOC_PG_USER; as anyone else, as ourselves (None)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("LONGDOC_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise AssertionError(
            f"running as root, PostgreSQL needs a non-root user to run as: no user {name!r} "
            "(install Debian's postgresql package, or set LONGDOC_PG_USER)"
        ) from None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    bin_dir: Path

    def conninfo(self, dbname: str) -> str:
        return f"dbname={dbname} host={self.host} port={self.port} user={PG_ROLE}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """One statement through psql; its rows unaligned, one a line, fields split by '|'."""
        out = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, self.conninfo(dbname)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def create_database(self, name: str) -> str:
        """A fresh database; its conninfo."""
        assert len(name.encode()) <= 63, f"PostgreSQL would cut the database name {name!r}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.conninfo(name)


@contextlib.contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """initdb in a temporary folder owned by the server's user, start on a free loopback port
    (no fsync: test data), stop and remove after."""
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="longdoc-pg-"))
    as_user: dict = {}
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, log, port = base / "data", base / "server.log", free_port()

    def run(*argv: str) -> None:
        out = subprocess.run(argv, cwd=base, capture_output=True, text=True, timeout=120, **as_user)
        log_text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        assert out.returncode == 0, f"{argv[0]}: {out.stdout[-2000:]}{out.stderr[-2000:]}{log_text}"

    options = f"-h 127.0.0.1 -p {port} -k {base} -F -c max_connections=300"
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", PG_ROLE, "--auth=trust", "-E", "UTF8", "--locale=C")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        try:
            yield PostgresServer("127.0.0.1", port, bin_dir)
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (no pg_ctl; Debian: apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must have it (.ci/run installs it)")
        pytest.skip(message + ": the tests of a PostgreSQL catalog need a real server")
    with postgres_server(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_catalog(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database per test, as the lake's `--catalog` value."""
    # PostgreSQL cuts names at 63 bytes: keep well below, so a suffix (tests add "_other") fits.
    name = "lake_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:30]
    name += f"_{time.monotonic_ns() % 10**9}"
    return "postgres:" + postgres.create_database(name)


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A real Prefect server on a free loopback port with a fresh PREFECT_HOME; the environment
    every process that reports to it needs."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # workers and runs import this checkout's packages
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "LONGDOC_CACHE_DIR": str(home / "longdoc-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("LONGDOC_DATA_DIR", None)
    env.pop("LONGDOC_CATALOG", None)
    log = (home / "server.log").open("w")
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
    ]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(env["PREFECT_API_URL"] + "/health", timeout=10).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((home / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield env
    finally:
        stop_group(process)
        log.close()


@pytest.fixture(scope="session")
def prefect_server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with prefect_server(tmp_path_factory.mktemp("prefect-session")) as env:
        yield env


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process (and its group when it leads one: a Dask nanny's worker), SIGKILL
    after `grace` seconds."""
    leads_group = process.pid == _pgid(process.pid)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            if leads_group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        try:
            process.wait(timeout=wait)
            if leads_group:  # children of the group that outlive their leader
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@contextlib.contextmanager
def dask_cluster(env: dict[str, str], workers: int, folder: Path) -> Iterator[str]:
    """`dask scheduler` and `workers` × `dask worker` (one thread each), each a process of its own
    as on separate machines, all with `env`; the scheduler's address once every worker joined."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**env, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "false"}
    processes: list[subprocess.Popen] = []
    logs = []

    def start(name: str, *argv: str) -> None:
        logs.append((folder / f"{name}.log").open("w"))
        command = [sys.executable, "-m", *argv]
        processes.append(
            subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=logs[-1], stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    try:
        start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port))
        for k in range(workers):
            start(
                f"worker-{k}",
                *("distributed.cli.dask_worker", address, "--name", f"worker-{k}", "--nthreads", "1"),
                *("--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder / f"worker-{k}")),
            )
        try:
            with Client(address, timeout=120) as client:
                client.wait_for_workers(workers, timeout=180)
        except Exception as exc:
            tails = {path.name: path.read_text()[-1500:] for path in folder.glob("*.log")}
            raise AssertionError(f"the Dask cluster did not start: {exc}; logs: {tails}") from exc
        yield address
    finally:
        for process in reversed(processes):  # workers first, the scheduler last
            stop_group(process)
        for log in logs:
            log.close()


@pytest.fixture
def dask_cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """`start(env, workers=2)`: a Dask scheduler and workers for this test, stopped at its end."""
    with contextlib.ExitStack() as stack:

        def start(env: dict[str, str], workers: int = 2) -> str:
            return stack.enter_context(dask_cluster(env, workers, tmp_path_factory.mktemp("dask")))

        yield start


def executed_per_worker(address: str) -> dict[str, int]:
    """How many tasks each worker of the cluster ran (the work really spread over them)."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
    return {str(worker): int(n) for worker, n in counts.items()}
