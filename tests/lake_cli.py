"""A lake seen only through the `longdoc` command, as a user sees it: runs, queries, and every
public table's keyed contents, for the black-box tests of many writers and snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import DOCS

ROOT = Path(__file__).resolve().parents[1]

# The tables users query (DESIGN.md) whose rows one sequential run must reproduce. What names a
# run or a moment is left out (run ids, timestamps), and the JSON of all scores, which float
# rounding may write differently (the label and its rounded score stay).
PUBLIC_TABLES = ("documents", "segments", "segment_labels", "segment_summaries", "document_results", "rejects")
NOT_COMPARED = ("run_id", "ingested_at", "created_at", "rejected_at", "seen_at", "scores", "label_scores")
NOT_COMPARED += ("label_max_scores",)


# Tiny real models, and one document per shard, so a document's batches, hence its results,
# never depend on which other documents share its run.
def model_args(classifier: str, summarizer: str | None) -> list[str]:
    # each model's own budget: the summarizer's prompt takes ~300 of its tokens
    args = ["--classifier", classifier, "--overlap-tokens", "12", "--shard-documents", "1"]
    return [*args, "--summarizer", summarizer, "--max-new-tokens", "4"] if summarizer else [*args, "--no-summarize"]


@dataclass
class Lake:
    """A data directory (local or s3://) and its catalog (None: the default, in the data dir)."""

    data: str
    env: dict[str, str]
    catalog: str | None = None
    logs: list[str] = field(default_factory=list)

    def lake_args(self) -> list[str]:
        return ["--data-dir", self.data, *(["--catalog", self.catalog] if self.catalog else [])]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flows.cli", *args]

    def start_run(self, inputs: list[str], extra: list[str]) -> subprocess.Popen[str]:
        command = self.command("run", *inputs, *self.lake_args(), *extra)
        return subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def wait(self, process: subprocess.Popen[str], timeout: float = 600) -> str:
        output, _ = process.communicate(timeout=timeout)
        self.logs.append(output)
        assert process.returncode == 0, output[-4000:]
        return output

    def run(self, inputs: list[str], extra: list[str]) -> str:
        return self.wait(self.start_run(inputs, extra))

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def query(self, sql: str, as_of: str | None = None) -> list[dict]:
        args = ["query", sql, *self.lake_args(), "--format", "json", "--max-rows", "0"]
        out = self.cli(*args, *(["--as-of", as_of] if as_of else []))
        assert out.returncode == 0, f"{sql}: {out.stderr[-3000:]}"
        return json.loads(out.stdout)

    def run_ids(self) -> list[str]:
        return [r["run_id"] for r in self.query("SELECT run_id FROM runs ORDER BY started_at, run_id")]

    def contents(self, as_of: str | None = None, compared_only: bool = True) -> dict[str, list[str]]:
        """Every public table's rows as sorted canonical JSON, read in one statement (one snapshot);
        with `compared_only`, without the columns a run or a moment names."""
        left_out = ", ".join(f"'{c}'" for c in NOT_COMPARED) if compared_only else "''"
        parts = [
            f"SELECT '{table}' AS t, to_json(x)::VARCHAR AS j FROM "
            f"(SELECT {'DISTINCT ' if table == 'rejects' and compared_only else ''}"
            f"COLUMNS(c -> c NOT IN ({left_out})) FROM {table}) x"
            for table in PUBLIC_TABLES
        ]
        rows = self.query(" UNION ALL ".join(parts), as_of)
        tables: dict[str, list[str]] = {table: [] for table in PUBLIC_TABLES}
        for row in rows:
            tables[row["t"]].append(json.dumps(_rounded(json.loads(row["j"])), sort_keys=True, ensure_ascii=False))
        return {table: sorted(values) for table, values in tables.items()}


def assert_same_rows(actual: dict[str, list[str]], expected: dict[str, list[str]]) -> None:
    """Table by table, the rows only one side has (a readable failure, not two long dicts)."""
    differences = {}
    for table in PUBLIC_TABLES:
        if actual[table] != expected[table]:
            only_actual = sorted(set(actual[table]) - set(expected[table]))
            only_expected = sorted(set(expected[table]) - set(actual[table]))
            counts = f"{len(actual[table])} rows vs {len(expected[table])} expected"
            differences[table] = f"{counts}; only here: {only_actual[:3]}; only expected: {only_expected[:3]}"
    assert not differences, "\n".join(f"{t}: {d}" for t, d in differences.items())


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def write_inputs(folder: Path) -> dict[str, Path]:
    """Small inputs of every kind a run meets: text, Markdown, HTML, JSONL records and a damaged
    PDF (a reject); every document's text distinct."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / name for name in DOCS}
    for name, text in DOCS.items():
        files[name].write_text(text, encoding="utf-8")
    for k in range(4):
        files[f"story-{k}.txt"] = folder / f"story-{k}.txt"
        story = (
            f"Story {k}, part {i}: the ferry left at {i} o'clock and the crew counted {k * i} crates."
            for i in range(25)
        )
        files[f"story-{k}.txt"].write_text("\n\n".join(story), encoding="utf-8")
    files["records.jsonl"] = folder / "records.jsonl"
    with files["records.jsonl"].open("w", encoding="utf-8") as out:
        for k in range(4):
            text = " ".join(f"Record {k} sentence {i} says the harvest of year {2000 + i} was good." for i in range(20))
            out.write(json.dumps({"id": f"r{k}", "text": text, "region": f"north-{k}"}) + "\n")
    files["broken.pdf"] = folder / "broken.pdf"
    files["broken.pdf"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> this is not a PDF at all")
    return files


def overlapping(files: dict[str, Path]) -> tuple[list[str], list[str], list[str]]:
    """Two writers' inputs that share some files (texts, records and the reject), and their union."""
    shared = ["notes.md", "page.html", "records.jsonl", "broken.pdf"]
    first = [str(files[n]) for n in ["meeting.txt", "story-0.txt", "story-1.txt", *shared]]
    second = [str(files[n]) for n in ["story-2.txt", "story-3.txt", *shared]]
    union = sorted(set(first) | set(second))
    return first, second, union
