"""Many writers on one lake, through the `longdoc` command only: two runs at once with
overlapping inputs (the lake's own catalog file, and a real PostgreSQL catalog), and shards on
two Dask worker processes with the data in an S3 bucket (moto), must end with exactly the rows
of one sequential run over the same inputs (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import bucket_fs
from tests.lake_cli import Lake, assert_same_rows, model_args, overlapping, write_inputs
from tests.servers import PostgresServer, executed_per_worker

pytestmark = [pytest.mark.prefect, pytest.mark.processes]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def models(tiny_bert_classifier: str, tiny_llama: str) -> list[str]:
    return model_args(tiny_bert_classifier, tiny_llama)


@pytest.fixture(scope="module")
def sequential(
    inputs: dict[str, Path],
    models: list[str],
    prefect_server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[str]]:
    """The contents of a fresh lake made by one run over the union of the inputs."""
    lake = Lake(str(tmp_path_factory.mktemp("sequential") / "data"), prefect_server_env)
    lake.run(overlapping(inputs)[2], models)
    contents = lake.contents()
    # The inputs made every table: a comparison of empty tables would prove nothing.
    assert all(contents[t] for t in ("documents", "segments", "segment_labels", "segment_summaries", "rejects"))
    assert len(contents["document_results"]) == len(contents["documents"]) == 3 + 4 + 4
    return contents


def two_runs_at_once(lake: Lake, first: list[str], second: list[str], models: list[str]) -> None:
    runs = [lake.start_run(first, models), lake.start_run(second, models)]
    for process in runs:
        lake.wait(process)


@pytest.mark.parametrize("catalog", ["default", "postgres"])
def test_two_runs_at_once_give_the_rows_of_one_run(
    catalog: str,
    request: pytest.FixtureRequest,
    inputs: dict[str, Path],
    models: list[str],
    sequential: dict[str, list[str]],
    prefect_server_env: dict[str, str],
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path / "data"), prefect_server_env)
    if catalog == "postgres":
        lake.catalog = request.getfixturevalue("postgres_catalog")
    first, second, _ = overlapping(inputs)
    two_runs_at_once(lake, first, second, models)

    assert_same_rows(lake.contents(), sequential)
    statuses = lake.query("SELECT status FROM runs")
    assert [r["status"] for r in statuses] == ["completed", "completed"]
    if catalog == "postgres":  # the catalog really lives in PostgreSQL, not beside the data
        postgres: PostgresServer = request.getfixturevalue("postgres")
        dbname = lake.catalog.split("dbname=")[1].split()[0] if lake.catalog else ""
        tables = postgres.psql("SELECT tablename FROM pg_tables WHERE tablename LIKE 'ducklake%'", dbname)
        assert "ducklake_snapshot" in tables.split()
        assert not (tmp_path / "data" / "catalog.ducklake").exists()
    else:
        assert (tmp_path / "data" / "catalog.ducklake").exists()


def test_a_run_again_while_another_writes_adds_nothing(
    inputs: dict[str, Path],
    models: list[str],
    sequential: dict[str, list[str]],
    prefect_server_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The same inputs twice at once: every document is new to both writers, stored once."""
    lake = Lake(str(tmp_path / "data"), prefect_server_env)
    union = overlapping(inputs)[2]
    two_runs_at_once(lake, union, union, models)
    assert_same_rows(lake.contents(), sequential)


def test_shards_on_two_dask_workers_with_postgres_and_s3(
    s3: dict[str, str],
    inputs: dict[str, Path],
    models: list[str],
    prefect_server_env: dict[str, str],
    postgres_catalog: str,
    dask_cluster_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A scheduler and two workers as separate processes (as on separate machines), the catalog
    in PostgreSQL (from LONGDOC_CATALOG), inputs and data in a bucket: the rows of one local run."""
    names = sorted(inputs)
    for name in names:
        with bucket_fs(s3).open_output_stream(f"longdoc-test/many/{name}") as out:
            out.write(inputs[name].read_bytes())
    remote_inputs = [f"s3://longdoc-test/many/{name}" for name in names]
    aws = {k: v for k, v in s3.items() if k.startswith("AWS_")}
    env = {**prefect_server_env, **aws}

    local = Lake(str(tmp_path / "local"), env)
    local.run(remote_inputs, models)
    expected = local.contents()
    assert expected["documents"] and expected["segment_summaries"]

    address = dask_cluster_factory({**env, "LONGDOC_CATALOG": postgres_catalog}, workers=2)
    spread = Lake("s3://longdoc-test/dask-lake", {**env, "LONGDOC_CATALOG": postgres_catalog})
    spread.run(remote_inputs, [*models, "--task-runner", address])

    assert_same_rows(spread.contents(), expected)
    per_worker = executed_per_worker(address)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    import pyarrow.fs as pafs

    stored = bucket_fs(s3).get_file_info(pafs.FileSelector("longdoc-test/dask-lake", recursive=True))
    assert any(info.path.endswith(".parquet") for info in stored)  # the data files are in the bucket
