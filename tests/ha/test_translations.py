"""The integration's texts: every key the code uses is translated, and services.yaml matches strings.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

COMPONENT = Path(__file__).parents[2] / "custom_components" / "sim7020"
STRINGS = json.loads((COMPONENT / "strings.json").read_text())


def test_english_translation_is_strings_json() -> None:
    """translations/en.json is the generated copy of strings.json (HA builds one from the other)."""
    assert json.loads((COMPONENT / "translations" / "en.json").read_text()) == STRINGS


def test_exception_keys_are_translated() -> None:
    """Every translation_key raised with translation_domain=DOMAIN has a message."""
    used: set[str] = set()
    for source in COMPONENT.glob("*.py"):
        text = source.read_text()
        for call in re.finditer(r"translation_domain=DOMAIN,\s*translation_key=\"(\w+)\"", text):
            used.add(call.group(1))
    assert used
    assert used <= set(STRINGS["exceptions"]), used - set(STRINGS["exceptions"])


def test_services_yaml_matches_strings() -> None:
    """Each action and each of its fields has a name and a description."""
    services = yaml.safe_load((COMPONENT / "services.yaml").read_text())
    assert set(services) == set(STRINGS["services"])
    for name, service in services.items():
        texts = STRINGS["services"][name]
        assert texts["name"]
        assert texts["description"]
        assert set(service["fields"]) == set(texts["fields"])


def test_entity_translation_keys() -> None:
    """Each entity description's translation key has a name."""
    from custom_components.sim7020.binary_sensor import BINARY_SENSORS
    from custom_components.sim7020.event import EVENTS
    from custom_components.sim7020.number import NUMBERS
    from custom_components.sim7020.sensor import SENSORS
    from custom_components.sim7020.switch import SWITCHES

    for platform, descriptions in (
        ("sensor", SENSORS),
        ("binary_sensor", BINARY_SENSORS),
        ("event", (EVENTS,)),
        ("number", NUMBERS),
        ("switch", SWITCHES),
    ):
        for description in descriptions:
            assert STRINGS["entity"][platform][description.translation_key]["name"]


def test_repair_issues_are_translated() -> None:
    """Each repair issue the modem can raise (one per library problem kind, searching) has its text."""
    from custom_components.sim7020.issues import SEARCHING
    from sim7020_core.models import ProblemKind

    for key in [kind.value for kind in ProblemKind] + [SEARCHING, "port_busy"]:
        assert STRINGS["issues"][key]["title"]
        assert STRINGS["issues"][key]["description"]
