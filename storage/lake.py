"""The lake: DuckLake tables whose data files lie in the data directory and whose catalog is a
local DuckDB file (one machine, the default), a SQLite file, or PostgreSQL (many machines).

Everything that opens the lake goes through `connect`: the extensions are LOADed from their
PyPI packages' files (signed; nothing is installed or fetched), an s3 data directory gets a
secret from the standard AWS environment variables, and a DuckDB catalog file held by another
process's short write is waited for, not failed on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import catalog_file
from storage.sandbox import first_line

log = logging.getLogger("longdoc.storage")

LAKE = "lake"  # the name the lake is attached under
CATALOG_FILE = "catalog.ducklake"
DUCKDB_VERSION = "v1.5.5"
EXTENSIONS = {"ducklake": "ducklake", "postgres": "postgres_scanner", "sqlite": "sqlite_scanner", "httpfs": "httpfs"}
LOCK_WAIT_SECONDS = 120.0  # a DuckDB catalog file is held only for one commit or one read at a time

# One process opens a DuckDB catalog file once at a time: DuckDB refuses a second attach of a
# file the same process holds, and other processes wait on its lock (retried below).
_process_lock = threading.RLock()


class LakeError(Exception):
    """The lake cannot be opened or written, said in one line."""


@dataclass(frozen=True)
class LakeRef:
    """Where a lake is: its data directory (local path or s3://bucket/prefix) and its catalog
    (None: `<data-dir>/catalog.ducklake`; `postgres:<conninfo>`, `sqlite:<path>` or a path)."""

    data_dir: str
    catalog: str | None = None

    @property
    def is_local(self) -> bool:
        return "://" not in self.data_dir or self.data_dir.startswith("file://")

    @property
    def data_path(self) -> str:
        """DuckLake's DATA_PATH, with the trailing slash it expects."""
        if self.is_local:
            path = self.data_dir.removeprefix("file://")
            return str(Path(path).expanduser().resolve()) + "/"
        return self.data_dir.rstrip("/") + "/"

    @property
    def catalog_kind(self) -> str:
        spec = self.catalog or ""
        return "postgres" if spec.startswith("postgres:") else "sqlite" if spec.startswith("sqlite:") else "duckdb"

    def catalog_uri(self) -> str:
        """The `ducklake:` URI of the catalog; LakeError when none can be chosen."""
        if self.catalog:
            if self.catalog_kind == "duckdb":
                return "ducklake:" + str(Path(self.catalog).expanduser().resolve())
            kind, rest = self.catalog.split(":", 1)
            return f"ducklake:{kind}:" + (str(Path(rest).expanduser().resolve()) if kind == "sqlite" else rest)
        if not self.is_local:
            raise LakeError(
                f"a data directory on object storage ({self.data_dir}) needs --catalog "
                "(postgres:<conninfo>, or a local path): a DuckDB catalog file cannot live there"
            )
        return "ducklake:" + self.data_path + CATALOG_FILE

    def catalog_exists(self) -> bool:
        """False only when a file catalog is known not to exist yet (PostgreSQL: unknown, True)."""
        uri = self.catalog_uri().removeprefix("ducklake:")
        if self.catalog_kind == "postgres":
            return True
        return Path(uri.removeprefix("sqlite:")).exists()

    @property
    def catalog_path(self) -> Path | None:
        """The DuckDB catalog file, whose writes `storage.catalog_file` keeps safe from kills."""
        if self.catalog_kind != "duckdb":
            return None
        return Path(self.catalog_uri().removeprefix("ducklake:"))


def extension_file(name: str) -> str:
    """The signed extension file in its PyPI package (`duckdb-extension-<name>`)."""
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LakeError(f"the DuckDB extension {name} is not installed (pip install duckdb-extension-{name})")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"
    if not path.exists():
        raise LakeError(f"no {name} extension for DuckDB {DUCKDB_VERSION} at {path}")
    return str(path)


def new_connection(config: dict[str, Any] | None = None, ref: LakeRef | None = None) -> Any:
    """An in-memory DuckDB with the extensions `ref` needs loaded from their files (all of them
    when no `ref` is given), nothing else."""
    import duckdb

    settings = {"autoinstall_known_extensions": False, "autoload_known_extensions": False} | (config or {})
    if ref is not None and ref.catalog_path is not None:
        settings |= catalog_file.NO_CHECKPOINT
    con = duckdb.connect(":memory:", config=settings)
    if ref is not None and ref.catalog_path is not None:
        con.execute(catalog_file.NO_CHECKPOINT_PRAGMA)
    for name in needed_extensions(ref):
        con.execute(f"LOAD '{extension_file(name)}'")
    return con


def needed_extensions(ref: LakeRef | None) -> list[str]:
    if ref is None:
        return ["ducklake", "postgres_scanner", "sqlite_scanner", "httpfs"]
    kind = {"postgres": ["postgres_scanner"], "sqlite": ["sqlite_scanner"], "duckdb": []}[ref.catalog_kind]
    return ["ducklake", *kind, *([] if ref.is_local else ["httpfs"])]


# DuckDB keeps ~0.3 MB per ATTACH of a lake (its object cache, allocator) until the instance
# closes: a run's thousands of connections would grow the process by hundreds of MB. An instance
# is renewed after this many connections (reloading its extensions, ~0.2 s, amortised).
RENEW_AFTER_CONNECTIONS = 100


@dataclass
class _Instance:
    con: Any
    connections: int = 0
    open: int = 0  # cursors in use (a nested `connect` of another lake): never closed under them


_instances: dict[tuple[int, LakeRef], _Instance] = {}  # per process (a forked worker makes its own) and lake


def _instance(ref: LakeRef) -> _Instance:
    """This process's DuckDB for `ref`, its extensions loaded once per RENEW_AFTER_CONNECTIONS
    connections (loading costs ~0.2 s each). Called under `_process_lock`."""
    key = (os.getpid(), ref)
    held = _instances.get(key)
    if held is None or (held.connections >= RENEW_AFTER_CONNECTIONS and not held.open):
        if held is not None:
            held.con.close()
        held = _instances[key] = _Instance(new_connection(ref=ref))
    held.connections += 1
    return held


def add_s3_secret(con: Any) -> None:
    """A secret for s3:// from the standard AWS variables (AWS_ENDPOINT_URL: moto, MinIO)."""
    env = os.environ
    parts = [
        "TYPE s3",
        f"KEY_ID '{_quote(env.get('AWS_ACCESS_KEY_ID', ''))}'",
        f"SECRET '{_quote(env.get('AWS_SECRET_ACCESS_KEY', ''))}'",
        f"REGION '{_quote(env.get('AWS_REGION') or env.get('AWS_DEFAULT_REGION') or 'us-east-1')}'",
    ]
    if env.get("AWS_SESSION_TOKEN"):
        parts.append(f"SESSION_TOKEN '{_quote(env['AWS_SESSION_TOKEN'])}'")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        parts += [
            f"ENDPOINT '{_quote(host.rstrip('/'))}'",
            "URL_STYLE 'path'",
            f"USE_SSL {str(scheme == 'https').lower()}",
        ]
    con.execute(f"CREATE OR REPLACE SECRET longdoc_s3 ({', '.join(parts)})")


def _quote(text: str) -> str:
    return text.replace("'", "''")


def attach(con: Any, ref: LakeRef, read_only: bool = False, snapshot: int | None = None) -> None:
    """ATTACH the lake as `lake`, waiting while another process holds a DuckDB catalog file."""
    import duckdb

    if not ref.is_local:
        add_s3_secret(con)
    options = [f"DATA_PATH '{_quote(ref.data_path)}'"]
    if ref.catalog is None:  # the catalog lives in the data directory: a moved or copied one follows it
        options.append("OVERRIDE_DATA_PATH TRUE")
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    sql = f"ATTACH '{_quote(ref.catalog_uri())}' AS {LAKE} ({', '.join(options)})"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            con.execute(sql)
            return
        except duckdb.Error as exc:
            held = "lock" in str(exc).lower() or "conflicting" in str(exc).lower()
            if not held or time.monotonic() > deadline:
                raise LakeError(f"cannot open the lake at {ref.catalog_uri()}: {first_line(exc)}") from exc
            time.sleep(0.05)


def process_lock() -> threading.RLock:
    """Held while this process has the lake attached: a DuckDB catalog file is attached by one
    connection of a process at a time."""
    return _process_lock


@contextmanager
def catalog_held(ref: LakeRef, exclusive: bool) -> Iterator[None]:
    """A DuckDB catalog file locked for this process (see `storage.catalog_file`), made when a
    writer finds none; nothing to hold for a PostgreSQL or SQLite catalog."""
    path = ref.catalog_path
    if path is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            if exclusive:
                path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(catalog_file.held(path, exclusive, LOCK_WAIT_SECONDS))
            if exclusive and not path.exists():
                catalog_file.create(path)
        except (catalog_file.CatalogBusy, OSError) as exc:
            raise LakeError(f"cannot open the lake at {ref.catalog_uri()}: {first_line(exc)}") from exc
        yield


@contextmanager
def connect(ref: LakeRef, read_only: bool = False, snapshot: int | None = None) -> Iterator[Any]:
    """A connection with the lake attached as `lake`, detached (the catalog released) on exit;
    one at a time per process. A writer folds a long catalog log in before it lets go."""
    with _process_lock, catalog_held(ref, exclusive=not read_only):
        instance = _instance(ref)
        con = instance.con.cursor()
        instance.open += 1
        try:
            if ref.is_local and not read_only:
                Path(ref.data_path).mkdir(parents=True, exist_ok=True)
            attach(con, ref, read_only=read_only, snapshot=snapshot)
            try:
                yield con
            finally:
                _release(con)
        finally:
            instance.open -= 1
            con.close()
        if not read_only and ref.catalog_path is not None:
            _fold_in(ref.catalog_path)


def _fold_in(path: Path) -> None:
    """Fold a long catalog log in; a failure keeps the log (every commit is in it) for the next
    writer to fold, and does not fail the write that has committed."""
    import duckdb

    try:
        catalog_file.checkpoint_if_due(path)
    except (OSError, duckdb.Error) as exc:
        log.warning("the catalog log at %s was not folded in (the next write tries again): %s", path, first_line(exc))


def _release(con: Any) -> None:
    """Roll back what a failed caller left open and detach the lake."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")
    con.execute("USE memory")
    con.execute(f"DETACH {LAKE}")
