"""`longdoc alerts install`'s reading of deployments/automations.yaml, without a server: the
windows it gives the two nightly automations, and one-line errors for a wrong file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.alerts import DEFAULT_FILE, AlertsError, automation_specs, load_config


def windows(path: Path) -> dict[str, float]:
    specs = automation_specs(load_config(path), block_id="block")
    return {s["name"]: s["trigger"]["within"] for s in specs if s["trigger"].get("posture") == "Proactive"}


def test_the_shipped_file_gives_late_four_hours_and_missing_a_day_and_four_hours() -> None:
    assert windows(DEFAULT_FILE) == {"longdoc-nightly-late": 4 * 3600, "longdoc-nightly-missing": 28 * 3600}


def test_the_missing_window_is_the_period_plus_the_nightly_window(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_FILE.read_text())
    config["longdoc"]["nightly"] = {"starts": "22:30", "complete_by": "01:00", "period_seconds": 7 * 86400}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config))
    late, missing = 2.5 * 3600, 7 * 86400 + 2.5 * 3600  # past midnight; a weekly schedule
    assert windows(tmp_path / "a.yaml") == {"longdoc-nightly-late": late, "longdoc-nightly-missing": missing}


@pytest.mark.parametrize("period", [0, -5, "daily"])
def test_a_wrong_period_is_one_line(tmp_path: Path, period: object) -> None:
    config = yaml.safe_load(DEFAULT_FILE.read_text())
    config["longdoc"]["nightly"]["period_seconds"] = period
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(AlertsError, match="period_seconds must be"):
        load_config(tmp_path / "a.yaml")
