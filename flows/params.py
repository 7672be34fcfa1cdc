"""The parameters of `process-documents`: one model, filled by the CLI and by deployments."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

# The user-facing defaults are the library's own: each number is written once, beside the code
# it governs (tests, benchmarks and scoring call those functions without these parameters).
from tasks.classify.classify import DEFAULT_UNK_THRESHOLD
from tasks.errors import ConfigError
from tasks.formats.limits import MIB, Limits
from tasks.inference.engines import check_engine, engine_from_env
from tasks.inference.models import DEFAULT_DECODER
from tasks.redact.settings import DEFAULT_PHONE_REGIONS
from tasks.run.shards import DEFAULT_SHARD_DOCUMENTS
from tasks.summarize.summarize import DEFAULT_MAX_NEW_TOKENS

if TYPE_CHECKING:
    from tasks.redact import RedactSettings
    from tasks.run.plan import Plan

DEFAULT_DATA_DIR = "./longdoc-data"
# How long old lake snapshots (and the files only they need) are kept by `longdoc compact`:
# `--as-of` reaches runs this recent, and a reader this slow still finds its files.
DEFAULT_RETAIN_DAYS = 7.0
# A run that leaves the lake with more data files than this merges them (a 500k-document load
# leaves ~360; 10 more documents then cost 2.4x what they cost after the merge).
DEFAULT_MERGE_FILES_OVER = 128


def default_data_dir() -> str:
    return os.environ.get("LONGDOC_DATA_DIR", DEFAULT_DATA_DIR)


def default_catalog() -> str | None:
    return os.environ.get("LONGDOC_CATALOG") or None


class ProcessParams(BaseModel):
    """What to process, with which models, and where the results go."""

    inputs: list[str] = Field(min_length=1, description="Files, directories, globs or URLs.")
    data_dir: str = Field(
        default_factory=default_data_dir,
        description="The lake's data files, a local path or s3://bucket/prefix (env LONGDOC_DATA_DIR).",
    )
    catalog: str | None = Field(
        default_factory=default_catalog,
        description="The lake's catalog: postgres:<conninfo>, sqlite:<path> or a DuckDB file path; "
        "<data-dir>/catalog.ducklake when empty (env LONGDOC_CATALOG).",
    )
    labels: list[str] | None = Field(
        default=None, description="Zero-shot labels, comma-separated on the command line; a general set when empty."
    )
    classifier: str = Field(
        default="default", description="HF id, local directory, 'default' or 'default-decoder' (zero-shot on it)."
    )
    classifier_fallback: str = Field(
        default=DEFAULT_DECODER,
        description="Decoder that labels text the embedding classifier cannot represent; 'none' for no fallback.",
    )
    unk_threshold: float = Field(
        default=DEFAULT_UNK_THRESHOLD,
        ge=0,
        le=1,
        description="[UNK] share of a segment over which the fallback labels it.",
    )
    summarizer: str = Field(
        default="default",
        description="HF id, local directory, 'default' (Qwen2.5-Coder-0.5B-Instruct) or 'smollm2' (faster, weaker).",
    )
    max_tokens: int | None = Field(default=None, ge=8, description="Segment budget; each model's own when empty.")
    overlap_tokens: int | None = Field(
        default=None, ge=0, description="Overlap between segments; max_tokens/8 when empty."
    )
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, ge=1, le=4096, description="Summary length limit.")
    # 64, an int as before (`//`): deployments' parameter schema shows a default as written.
    max_document_mb: float = Field(
        default=Limits.max_document_bytes // MIB, gt=0, description="Per-document size limit (file, record or text)."
    )
    max_pages: int = Field(default=Limits.max_pages, ge=1, description="PDF page limit.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the models run.")
    classify: bool = Field(default=True, description="Whether to classify the segments.")
    summarize: bool = Field(default=True, description="Whether to summarize the segments and documents.")
    redact: bool = Field(
        default=False,
        description="Replace personal data (e-mail, phone, card, IBAN, ID and IP numbers, URL credentials) "
        "by placeholders before anything is stored.",
    )
    redact_phone_regions: list[str] = Field(
        default=list(DEFAULT_PHONE_REGIONS),
        description="Regions whose national phone numbers (no + and country code) redaction finds, comma-separated.",
    )
    engine: Literal["transformers", "vllm"] = Field(
        default_factory=engine_from_env,
        validate_default=True,  # LONGDOC_ENGINE is checked like the option
        description="Generation engine: 'transformers', or 'vllm' where installed (env LONGDOC_ENGINE).",
    )
    cache_dir: str | None = Field(default=None, description="Converted models; ~/.cache/longdoc when empty.")
    task_runner: str = Field(
        default="threads", description="'threads', 'dask' (a local cluster), or a Dask scheduler's address."
    )
    workers: int = Field(default=1, ge=1, le=1024, description="Threads, or the local Dask cluster's processes.")
    compact: bool = Field(default=False, description="Compact the lake after the run (the nightly does).")
    retain_days: float = Field(
        default=DEFAULT_RETAIN_DAYS, gt=0, description="Days of lake snapshots a compaction keeps."
    )
    merge_files_over: int = Field(
        default=DEFAULT_MERGE_FILES_OVER,
        ge=0,
        description="Merge the lake's small data files after a run that leaves more than this many (0: always).",
    )
    shard_documents: int = Field(
        default=DEFAULT_SHARD_DOCUMENTS,
        ge=1,
        description="Documents per shard at most (8M characters cut one sooner), the unit of work tracked.",
    )

    def make_plan(self) -> Plan:
        """Resolve the models (loading nothing heavy twice) and fix each one's segmentation."""
        from tasks.run.plan import make_plan

        plan = make_plan(
            self.classifier if self.classify else None,
            self.labels,
            self.summarizer if self.summarize else None,
            self.max_tokens,
            self.overlap_tokens,
            self.max_new_tokens,
            Path(self.cache_dir) if self.cache_dir else None,
            None if self.classifier_fallback.strip().lower() == "none" else self.classifier_fallback,
            self.unk_threshold,
            settings.key if (settings := self.redact_settings()) else None,
        )
        if plan.summarizer is None or self.engine == plan.summarizer.engine:
            return plan
        return replace(plan, summarizer=replace(plan.summarizer, engine=self.engine))

    def redact_settings(self) -> RedactSettings | None:
        """What ingest redacts, None without --redact."""
        from tasks.redact import RedactSettings

        return RedactSettings(phone_regions=tuple(self.redact_phone_regions)) if self.redact else None

    def recorded(self) -> dict[str, Any]:
        """The parameters as the `runs` row keeps them: with --redact, the inputs' names redacted
        too (a file or folder can be named by an address)."""
        values = self.model_dump()
        settings = self.redact_settings()
        if settings:
            from tasks.redact import scrub_uri

            values["inputs"] = [scrub_uri(name, settings) for name in self.inputs]
        return values

    @field_validator("redact_phone_regions")
    @classmethod
    def _check_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        cleaned = [r.strip().upper() for r in regions if r.strip()]
        if unknown := [r for r in cleaned if r not in phonenumbers.SUPPORTED_REGIONS]:
            raise ValueError(f"--redact-phone-regions: unknown region {unknown[0]!r} (two letters, e.g. US,CN,GB)")
        return cleaned

    @field_validator("task_runner")
    @classmethod
    def _check_runner(cls, runner: str) -> str:
        runner = runner.strip()
        if runner in ("threads", "dask") or "://" in runner:
            return runner
        raise ValueError("must be 'threads', 'dask', or a scheduler address such as tcp://host:8786")

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, engine: str) -> str:
        try:
            return check_engine(engine)
        except ConfigError as exc:  # a ValueError, so the CLI prints it as its one line
            raise ValueError(str(exc)) from None

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is None:
            return None
        cleaned = [label.strip() for label in labels if label.strip()]
        if not cleaned:  # asked for no labels: not the same request as the default set
            raise ValueError("--labels is empty: name the labels (a,b,c), or leave the option out for the default set")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("labels must be distinct")
        return cleaned

    @model_validator(mode="after")
    def _check_overlap(self) -> ProcessParams:
        """An overlap as large as the whole segment is never possible (the plan checks the exact
        bound, half of each model's text budget, once the models are known)."""
        if self.overlap_tokens is not None and self.max_tokens is not None and self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"--overlap-tokens {self.overlap_tokens} is not less than --max-tokens {self.max_tokens}: "
                "the overlap must fit within half a segment's text"
            )
        return self

    def limits(self) -> Limits:
        """The ingest limits these parameters set."""
        return Limits(max_document_bytes=int(self.max_document_mb * MIB), max_pages=self.max_pages)
