"""`longdoc alerts install`: the automations of deployments/automations.yaml on the Prefect
server PREFECT_API_URL names, notifying through a webhook block, and the data-quality
thresholds the runs judge themselves by (a Prefect variable, flows/finish.py).

Installing again replaces the automations of the same names, so an edited file never leaves
two alerts for one incident.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flows.finish import THRESHOLDS_VARIABLE
from tasks.report import QualityThresholds

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "deployments" / "automations.yaml"
BLOCK_PLACEHOLDER = "WEBHOOK"
LATE_AUTOMATION = "longdoc-nightly-late"
MISSING_AUTOMATION = "longdoc-nightly-missing"
DAY_SECONDS = 86400


class AlertsError(Exception):
    """A wrong alerts file or block: one line at the CLI."""


@dataclass(frozen=True)
class AlertsConfig:
    webhook_block: str
    nightly_window: timedelta
    nightly_period: timedelta
    thresholds: QualityThresholds
    automations: list[dict[str, Any]]


def nightly_window(nightly: dict[str, Any]) -> timedelta:
    """How long after its start a nightly may take: `within_seconds`, else `complete_by` minus
    `starts` (HH:MM, past midnight when earlier)."""
    if "within_seconds" in nightly:
        return timedelta(seconds=float(nightly["within_seconds"]))
    try:
        starts, ends = (datetime.strptime(str(nightly[k]), "%H:%M") for k in ("starts", "complete_by"))
    except (KeyError, ValueError) as exc:
        raise AlertsError(f"longdoc.nightly needs starts and complete_by as HH:MM ({exc})") from exc
    window = ends - starts
    return window if window > timedelta(0) else window + timedelta(days=1)


def nightly_period(nightly: dict[str, Any]) -> timedelta:
    """The nightly's schedule period (`period_seconds`, a day by default): a completed nightly
    is expected within this plus the window after the previous one."""
    try:
        seconds = float(nightly.get("period_seconds", DAY_SECONDS))
    except (TypeError, ValueError) as exc:
        raise AlertsError(f"longdoc.nightly.period_seconds must be a number ({exc})") from exc
    if seconds <= 0:
        raise AlertsError(f"longdoc.nightly.period_seconds must be positive, not {seconds:g}")
    return timedelta(seconds=seconds)


def load_config(path: Path) -> AlertsConfig:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AlertsError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("automations"), list):
        raise AlertsError(f"{path}: no `automations:` list")
    own = data.get("longdoc") or {}
    nightly = own.get("nightly") or {"starts": "02:00", "complete_by": "06:00"}
    try:
        thresholds = QualityThresholds.from_mapping(own.get("thresholds"))
    except (TypeError, ValueError) as exc:
        raise AlertsError(f"{path}: longdoc.thresholds: {exc}") from exc
    return AlertsConfig(
        webhook_block=str(own.get("webhook_block", "longdoc-alerts")),
        nightly_window=nightly_window(nightly),
        nightly_period=nightly_period(nightly),
        thresholds=thresholds,
        automations=data["automations"],
    )


def webhook_block_id(config: AlertsConfig, webhook_url: str | None, block: str | None) -> str:
    """The notification block's id: a Custom Webhook block made (or updated) from the URL, or a
    block the user made, named `type-slug/name` (e.g. slack-webhook/ops)."""
    if webhook_url:
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        made = CustomWebhookNotificationBlock(
            name=config.webhook_block,
            url=webhook_url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            headers=None,
            cookies=None,
        )
        made.save(config.webhook_block, overwrite=True)
        return str(made._block_document_id)
    from prefect.blocks.core import Block

    if not block or "/" not in block:
        raise AlertsError("give --webhook-url URL, or --block TYPE/NAME (e.g. slack-webhook/ops)")
    try:
        loaded: Any = Block.load(block)  # a block, in a synchronous caller
    except (ValueError, KeyError) as exc:
        raise AlertsError(f"no notification block {block}: {exc}") from exc
    return str(loaded._block_document_id)


def automation_specs(config: AlertsConfig, block_id: str) -> list[dict[str, Any]]:
    specs = []
    for raw in config.automations:
        spec = {**raw, "trigger": dict(raw.get("trigger") or {})}
        spec["actions"] = [
            {**a, "block_document_id": block_id} if a.get("block_document_id") == BLOCK_PLACEHOLDER else a
            for a in raw.get("actions") or []
        ]
        if spec.get("name") == LATE_AUTOMATION:
            spec["trigger"]["within"] = config.nightly_window.total_seconds()
        elif spec.get("name") == MISSING_AUTOMATION:
            spec["trigger"]["within"] = (config.nightly_period + config.nightly_window).total_seconds()
        specs.append(spec)
    return specs


async def _replace_automations(specs: list[dict[str, Any]]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    models = []
    for spec in specs:
        try:
            models.append(AutomationCore.model_validate(spec))
        except ValueError as exc:
            raise AlertsError(f"automation {spec.get('name')!r}: {exc}") from exc
    async with get_client() as client:
        for model in models:
            for old in await client.read_automations_by_name(model.name):
                await client.delete_automation(old.id)
            await client.create_automation(model)
    return [m.name for m in models]


def install(path: Path, webhook_url: str | None = None, block: str | None = None) -> list[str]:
    """Install the alerts of `path`; returns the automations' names."""
    from dataclasses import asdict

    from prefect.variables import Variable

    config = load_config(path)
    block_id = webhook_block_id(config, webhook_url, block)
    thresholds = {k: v for k, v in asdict(config.thresholds).items() if v is not None}
    Variable.set(THRESHOLDS_VARIABLE, thresholds, overwrite=True)
    return asyncio.run(_replace_automations(automation_specs(config, block_id)))
