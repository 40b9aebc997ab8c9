"""Diagnostics: useful state, with the module's and SIM's identities and the IP address redacted."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from .common import ICCID, IMEI, IMSI
from .conftest import SetupEntry


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    setup_entry: SetupEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The download shows the link state, identity and status; personal data is redacted."""
    entry = await setup_entry()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    for secret in (IMEI, IMSI, ICCID, "10.250.0.213"):
        assert secret not in text
    assert diagnostics["link_state"] == "ready"
    assert diagnostics["info"]["model"] == "SIM7020E"
    assert diagnostics["status"]["registration"] == "home"
    # The device URL carries a random test port.
    assert diagnostics == snapshot(exclude=props("device"))
