"""`longdoc query` as a hostile analyst would use it: every way out of the lake is refused in one
line, and neither the data directory nor the working directory changes by one byte. The lake's
own data files are readable by DuckDB there (DuckLake reads them), so reading or writing them
from SQL is among the attacks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flows.cli import main
from storage import warehouse
from storage.datasets import Store
from storage.warehouse import WarehouseError
from tests.conftest import document_row

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    store = Store(str(root))
    store.add("documents", [document_row(f"d{i:02d}", f"text number {i}") for i in range(30)])
    return root


def listing(root: Path) -> dict[str, str]:
    """Every file and folder under `root` (hidden ones too): its path and its bytes' sha256."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            seen[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = os.path.join(folder, name)
            seen[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return seen


def longdoc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def attacks(data: Path) -> list[tuple[str, ...]]:
    """Each a query and its options; every one must end in exit 2 and one line on stderr."""
    return [
        ("select * from read_csv('/etc/passwd')",),
        ("select content from read_text('/etc/passwd')",),
        ("select content from read_blob('/etc/passwd')",),
        ("select * from glob('/*')",),
        ("select * from read_parquet('documents/*.parquet')",),
        (f"select * from read_parquet('{data}/main/documents/*.parquet')",),
        (f"select * from parquet_metadata('{data}/main/documents/*.parquet')",),
        (f"select * from '{data}/main/documents/*.parquet'",),
        (f"select * from glob('{data}/**')",),
        (f"select * from read_text('{data}/catalog.ducklake')",),
        ("SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')",),
        ("SELECT * FROM query_table('documents')",),
        ("select * from ducklake_expire_snapshots('lake', older_than => now())",),
        ("select * from ducklake_merge_adjacent_files('lake')",),
        ("select * from ducklake_cleanup_old_files('lake', cleanup_all => true)",),
        ("select * from ducklake_add_data_files('lake', 'documents', '/etc/passwd')",),
        ("CALL ducklake_expire_snapshots('lake', older_than => now())",),
        ("CALL lake.merge_adjacent_files()",),
        ("select * from documents AT (VERSION => 1)",),
        ("COPY (SELECT doc_id FROM documents) TO 'out.csv'",),
        (f"COPY (SELECT * FROM documents LIMIT 1) TO '{data}/main/documents/zzzz.parquet' (FORMAT parquet)",),
        ("ATTACH 'ducklake:other.ducklake' AS other",),
        ("DETACH lake",),
        ("EXPORT DATABASE 'exported'",),
        ("ATTACH 'other.duckdb' (READ_WRITE)",),
        ("INSTALL httpfs",),
        ("LOAD httpfs",),
        ("select * from read_csv('http://127.0.0.1:9/x.csv')",),
        ("SET threads = 64",),
        ("SET enable_external_access = true",),
        ("PRAGMA database_list",),
        ("CALL pragma_version()",),
        ("CHECKPOINT",),
        ("select 1; select 2",),
        ("select count(*) from documents; COPY (select 1) TO 'out.csv'",),
        ("DELETE FROM documents",),
        ("DROP TABLE documents",),
        ("CREATE TABLE t AS SELECT 1",),
        ("INSERT INTO documents SELECT * FROM documents",),
        ("WITH x AS (SELECT 1) DELETE FROM documents",),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'out.csv'",),
        ("",),
        ("select count(*) from range(1000000000000) a, range(1000) b", "--timeout", "1"),
        ("select list(range) from range(200000000)", "--memory-limit", "64MB"),
    ]


def test_attacks_are_refused_and_change_no_byte(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "keep.txt").write_text("the analyst's own file")
    monkeypatch.chdir(cwd)  # where relative paths in the SQL would land
    before = (listing(data), listing(cwd))
    said = {}
    for case in attacks(data):
        assert main(["query", case[0], "--data-dir", str(data), *case[1:]]) == 2, case
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("longdoc: error: ") and err.count("\n") == 1, (case, out, err)
        said[case[0]] = err
    assert "time limit of 1 s (--timeout)" in said[attacks(data)[-2][0]]
    assert "memory limit of 64MB (--memory-limit)" in said[attacks(data)[-1][0]]
    assert "one statement per query" in said["select 1; select 2"]
    assert "read_parquet is not allowed" in said[f"select * from read_parquet('{data}/main/documents/*.parquet')"]
    assert (listing(data), listing(cwd)) == before
    # The worst of them once more through the real command, in processes of their own.
    worst = [
        case for case in attacks(data) if case[0].startswith(("COPY", "ATTACH", "EXPORT", "select * from read_csv"))
    ]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda case: longdoc("query", *case, "--data-dir", str(data), cwd=cwd), worst))
    for case, result in zip(worst, results, strict=True):
        assert result.returncode == 2 and result.stdout == "", (case, result.stdout, result.stderr)
        assert result.stderr.startswith("longdoc: error: ") and result.stderr.count("\n") == 1, (case, result.stderr)
    assert len(worst) == 7 and (listing(data), listing(cwd)) == before
    # Reads with a side effect's name do nothing on a read-only connection.
    for harmless in ("SELECT * FROM checkpoint()", "SELECT * FROM force_checkpoint()"):
        main(["query", harmless, "--data-dir", str(data)])
    assert main(["query", "SELECT count(*) AS n FROM documents", "--data-dir", str(data), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["n", "30"]
    assert (listing(data), listing(cwd)) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM documents",
        "WITH t AS (SELECT doc_id FROM documents) SELECT count(*) FROM t",
        "FROM documents SELECT count(*)",
        "DESCRIBE documents",
        "SHOW TABLES",
        "SUMMARIZE documents",
        "EXPLAIN SELECT count(*) FROM documents",
        "EXPLAIN ANALYZE SELECT count(*) FROM documents",
        "VALUES (1), (2)",
        "TABLE runs",
        "(SELECT 1)",
        "  /* a comment */ select doc_id from document_overview limit 1;",
        "SELECT snapshot_id, run_id FROM runs",
        "SELECT * FROM ducklake_snapshots('lake')",
    ],
)
def test_reads_of_every_kind_run(data: Path, sql: str) -> None:
    columns, _ = warehouse.query(Store(str(data)), sql)
    assert columns


@pytest.mark.parametrize(
    "sql", ["EXPLAIN DELETE FROM documents", "EXPLAIN (FORMAT json) CALL pragma_version()", "PRAGMA version", "USE x"]
)
def test_a_write_behind_a_read_word_is_refused(data: Path, sql: str) -> None:
    with pytest.raises(WarehouseError, match="only reads are allowed"):
        warehouse.query(Store(str(data)), sql)


def test_printed_rows_are_cut_with_a_note(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Ten billion rows: fetched lazily, so only what is printed is ever made.
    huge = "SELECT * FROM range(10000000000)"
    assert main(["query", huge, "--data-dir", str(data), "--format", "csv", "--max-rows", "5"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["range", "0", "1", "2", "3", "4"]
    assert (
        err == "longdoc: note: output cut at 5 rows; --max-rows N shows more (0 for all), or page with LIMIT/OFFSET\n"
    )
    assert main(["query", "SELECT * FROM range(1500)", "--data-dir", str(data), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 + 1000 and "cut at 1000 rows" in err  # the default
    assert main(["query", "SELECT * FROM range(1500)", "--data-dir", str(data), "--max-rows", "0"]) == 0
    out, err = capsys.readouterr()
    assert "(1500 rows)" in out and err == ""


@pytest.mark.parametrize(
    "option",
    [["--threads", "0"], ["--threads", "100000"], ["--timeout", "0"], ["--max-rows", "-1"], ["--memory-limit", "lots"]],
)
def test_a_bad_limit_is_one_line(data: Path, option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT 1", "--data-dir", str(data), *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("longdoc: error: ") and err.count("\n") == 1, err


def test_environment_errors_are_one_line(data: Path, tmp_path: Path) -> None:
    """A missing, unwritable or damaged data directory and an unreachable bucket: exit 2 and one
    line for query, runs and rebuild. Tests run as root, for whom chmod stops nothing: /sys is
    a directory the kernel refuses to create files in for root too (read-only in containers),
    and a data directory that is a file cannot be created. A damaged catalog is named; a
    damaged warehouse.duckdb of the old layout is a copy the migration drops."""
    assert Path("/sys/kernel").is_dir()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "catalog.ducklake").write_bytes(os.urandom(5000))
    old = tmp_path / "old"
    old.mkdir()
    (old / "warehouse.duckdb").write_bytes(os.urandom(5000))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    bucket = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_EC2_METADATA_DISABLED": "true",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
    }
    missing, s3 = str(tmp_path / "missing"), "s3://bucket/data"
    cases: list[tuple[list[str], str, dict[str, str]]] = [
        (["query", "SELECT 1", "--data-dir", missing], "no data directory at", {}),
        (["runs", "--data-dir", missing], "no data directory at", {}),
        (["rebuild", "--data-dir", missing], "no data directory at", {}),
        (["rebuild", "--data-dir", str(a_file)], "a-file", {}),
        (["rebuild", "--data-dir", "/sys/kernel"], "/sys/kernel", {}),
        (["query", "SELECT 1", "--data-dir", str(damaged)], "catalog.ducklake", {}),
        (["runs", "--data-dir", str(damaged)], "catalog.ducklake", {}),
        (["query", "SELECT 1", "--data-dir", s3], "needs --catalog", bucket),
        (["rebuild", "--data-dir", s3], "needs --catalog", bucket),
    ]
    with ThreadPoolExecutor(6) as pool:  # the bucket cases wait out pyarrow's retries (~6 s)
        results = list(pool.map(lambda case: longdoc(*case[0], cwd=tmp_path, env=case[2]), cases))
    for (args, said, _), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("longdoc: error: ") and result.stderr.count("\n") == 1, (args, result.stderr)
        assert said in result.stderr, (args, result.stderr)
    assert not (tmp_path / "missing").exists()
    assert longdoc("runs", "--data-dir", str(old), cwd=tmp_path).returncode == 0
    assert not (old / "warehouse.duckdb").exists() and (old / "catalog.ducklake").exists()
