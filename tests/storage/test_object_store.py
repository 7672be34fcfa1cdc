"""The flow with inputs and data directory in an S3 bucket, served by moto on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DOCS, bucket_fs

pytestmark = pytest.mark.prefect


def test_bucket_in_bucket_out(s3: dict[str, str], tmp_path: Path, tiny_bert_classifier: str) -> None:
    env = {
        **s3,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LONGDOC_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PREFECT_API_URL", None)
    data = "s3://longdoc-test/data"
    catalog = str(tmp_path / "catalog.ducklake")  # a DuckDB catalog is a local file; the data is in the bucket
    args = ["run", "s3://longdoc-test/inbox", "--data-dir", data, "--classifier", tiny_bert_classifier]
    args += ["--no-summarize", "--max-tokens", "64", "--shard-documents", "2"]

    def longdoc(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flows.cli", *argv], env=env, capture_output=True, text=True, timeout=600
        )

    refused = longdoc(*args)  # no catalog named: one line saying why one is needed
    assert refused.returncode == 2 and "needs --catalog" in refused.stderr, refused.stderr[-3000:]
    first = longdoc(*args, "--catalog", catalog)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    import pyarrow.fs as pafs

    listing = bucket_fs(s3).get_file_info(pafs.FileSelector("longdoc-test/data", recursive=True))
    stored = {info.path.split("/")[3] for info in listing if info.path.endswith(".parquet")}
    # data files in the bucket for the tables with more rows than the catalog inlines (the three
    # documents are inlined in the catalog, on m16 too)
    assert {"segments", "segment_labels"} <= stored

    sql = "SELECT d.source_uri, r.label FROM document_results r JOIN documents d USING (doc_id) ORDER BY 1"
    out = longdoc("query", sql, "--data-dir", data, "--catalog", catalog, "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"s3://longdoc-test/inbox/{n}" for n in sorted(DOCS)]
    counted = longdoc("query", "SELECT count(*) FROM segment_labels", "--data-dir", data, "--catalog", catalog)
    assert counted.returncode == 0, counted.stderr
