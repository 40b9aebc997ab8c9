"""quality_scale.yaml covers the whole current rule list, and every rule not done says why."""

from __future__ import annotations

from pathlib import Path

import yaml

SCALE = Path(__file__).parents[2] / "custom_components" / "sim7020" / "quality_scale.yaml"

#: The 54 rules of Home Assistant's integration quality scale, by tier, as listed on
#: https://developers.home-assistant.io/docs/core/integration-quality-scale/rules (checked 2026-12).
#: Pinned here: a file that leaves a rule out would otherwise read as complete.
RULES = {
    "bronze": {
        "action-setup", "appropriate-polling", "brands", "common-modules", "config-flow-test-coverage",
        "config-flow", "dependency-transparency", "docs-actions", "docs-triggers", "docs-conditions",
        "docs-high-level-description", "docs-installation-instructions", "docs-removal-instructions",
        "entity-event-setup", "entity-unique-id", "has-entity-name", "runtime-data", "test-before-configure",
        "test-before-setup", "unique-config-entry",
    },
    "silver": {
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner", "log-when-unavailable",
        "parallel-updates", "reauthentication-flow", "test-coverage",
    },
    "gold": {
        "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update", "docs-examples",
        "docs-known-limitations", "docs-supported-devices", "docs-supported-functions",
        "docs-troubleshooting", "docs-use-cases", "dynamic-devices", "entity-category", "entity-device-class",
        "entity-disabled-by-default", "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    },
    "platinum": {"async-dependency", "inject-websession", "strict-typing"},
}  # fmt: skip


def test_every_rule_is_listed_once() -> None:
    """All 54 rules, nothing else."""
    listed = yaml.safe_load(SCALE.read_text())["rules"]
    every = set().union(*RULES.values())
    assert len(every) == 54
    assert set(listed) == every


def test_statuses_and_reasons() -> None:
    """Each status is done, todo or exempt; todo and exempt say why."""
    for rule, entry in yaml.safe_load(SCALE.read_text())["rules"].items():
        status = entry if isinstance(entry, str) else entry["status"]
        assert status in {"done", "todo", "exempt"}, rule
        if status != "done":
            assert isinstance(entry, dict), f"{rule} is {status} without a comment"
            assert entry.get("comment"), f"{rule} is {status} without a comment"
