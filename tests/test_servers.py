"""The test servers themselves: a real PostgreSQL and a Dask cluster of separate processes."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.servers import PostgresServer, executed_per_worker

pytestmark = pytest.mark.processes


def test_postgres_gives_each_test_its_own_database(postgres: PostgresServer, postgres_catalog: str) -> None:
    assert postgres_catalog.startswith("postgres:dbname=lake_")
    dbname = postgres_catalog.split("dbname=")[1].split()[0]
    postgres.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)", dbname)
    assert postgres.psql("SELECT sum(x) FROM t", dbname).strip() == "3"
    other = postgres.create_database(dbname + "_other")
    assert "dbname=" + dbname + "_other" in other
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = 't'", dbname + "_other").strip() == "0"


def test_dask_workers_are_separate_processes_with_the_environment(
    dask_cluster_factory: Callable[..., str],
) -> None:
    from distributed import Client

    env = {**os.environ, "LONGDOC_CATALOG": "postgres:dbname=x"}
    address = dask_cluster_factory(env, workers=2)
    with Client(address, timeout=60) as client:
        seen = client.run(lambda: (os.getpid(), os.environ.get("LONGDOC_CATALOG")))
        futures = [client.submit(pow, k, 2, pure=False) for k in range(20)]
        assert client.gather(futures) == [k * k for k in range(20)]
    pids = {pid for pid, _ in seen.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {catalog for _, catalog in seen.values()} == {"postgres:dbname=x"}
    assert sum(executed_per_worker(address).values()) >= 20
