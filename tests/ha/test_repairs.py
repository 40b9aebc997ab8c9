"""Repair issues: what the library says needs a human (``Modem.problem``), one issue per kind, created when
it appears and deleted when it clears; and a registration that stays searching for long.

Faults come from the emulated module: the network denies the registration (``detach(reg_stat=3)``), the
network is searched for without end (``detach(reg_stat=2)``), the SIM stays busy after a reboot.
"""

from __future__ import annotations

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.sim7020 import issues
from custom_components.sim7020.const import DOMAIN
from sim7020_core import const
from sim7020_core.models import ModemProblem, ProblemKind

from .common import state_of, wait_for
from .conftest import EmulatedModem, SetupEntry


def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def test_registration_denied_is_an_issue_until_registered(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    entry = await setup_entry()
    issue_id = issues.problem_issue_id(entry.entry_id, ProblemKind.REGISTRATION_DENIED)
    assert _issue(hass, issue_id) is None

    modem.emulator.detach(reg_stat=3)
    await wait_for(hass, lambda: _issue(hass, issue_id) is not None, "the registration-denied issue")
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "registration_denied"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert "denies" in issue.translation_placeholders["message"]
    assert state_of(hass, "sensor", "registration") == "denied"

    modem.emulator.attach()
    await wait_for(hass, lambda: _issue(hass, issue_id) is None, "the issue to clear")
    assert state_of(hass, "sensor", "registration") == "home"


async def test_a_sim_problem_is_an_issue_until_the_modem_runs_again(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SIM stays busy after a reboot: the library gives up and says so; once the SIM answers and the
    entry is reloaded, the issue is gone."""
    monkeypatch.setattr(const, "SIM_BUSY_RETRY_DELAY", 0.01)
    entry = await setup_entry()
    issue_id = issues.problem_issue_id(entry.entry_id, ProblemKind.SIM)

    modem.emulator.sim_busy_at_boot(1000)
    modem.emulator.reboot()
    await wait_for(hass, lambda: _issue(hass, issue_id) is not None, "the SIM issue")
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "sim"
    assert issue.translation_placeholders is not None
    assert "SIM" in issue.translation_placeholders["message"]

    modem.emulator.sim_busy_at_boot(0)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _issue(hass, issue_id) is None


async def test_a_sim_problem_at_setup_is_an_issue_while_setup_retries(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(const, "SIM_BUSY_RETRY_DELAY", 0.01)
    modem.emulator.sim_busy_at_boot(1000)
    modem.emulator.reboot()
    entry = await setup_entry(expect_loaded=False)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    issue_id = issues.problem_issue_id(entry.entry_id, ProblemKind.SIM)
    assert _issue(hass, issue_id) is not None

    await hass.config_entries.async_remove(entry.entry_id)
    assert _issue(hass, issue_id) is None


async def test_searching_for_long_is_an_issue_until_registered(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issues, "SEARCHING_ISSUE_DELAY", 0.3)
    entry = await setup_entry()
    issue_id = issues.searching_issue_id(entry.entry_id)

    modem.emulator.detach(reg_stat=2)
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "searching", "searching")
    await wait_for(hass, lambda: _issue(hass, issue_id) is not None, "the searching issue")
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_key == "registration_searching"
    assert issue.severity is ir.IssueSeverity.WARNING

    modem.emulator.attach()
    await wait_for(hass, lambda: _issue(hass, issue_id) is None, "the issue to clear")


async def test_a_short_search_is_no_issue(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issues, "SEARCHING_ISSUE_DELAY", 60.0)
    entry = await setup_entry()
    modem.emulator.detach(reg_stat=2)
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "searching", "searching")
    modem.emulator.attach()
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "home", "registered")
    assert _issue(hass, issues.searching_issue_id(entry.entry_id)) is None


async def test_unload_deletes_the_issues(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """An unloaded modem is not watched: its issues go (they come back at setup if the cause remains)."""
    entry = await setup_entry()
    modem.emulator.detach(reg_stat=3)
    issue_id = issues.problem_issue_id(entry.entry_id, ProblemKind.REGISTRATION_DENIED)
    await wait_for(hass, lambda: _issue(hass, issue_id) is not None, "the registration-denied issue")
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert _issue(hass, issue_id) is None


async def test_one_issue_per_kind_as_the_library_shows_them(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    """The library shows the first kind present (ProblemKind order): a kind shown clears the earlier kinds'
    issues and keeps the later ones, which may still be there underneath; no problem clears them all."""
    entry = await setup_entry()
    manager = entry.runtime_data

    def present() -> set[ProblemKind]:
        return {kind for kind in ProblemKind if _issue(hass, issues.problem_issue_id(entry.entry_id, kind))}

    denied = ModemProblem(ProblemKind.REGISTRATION_DENIED, "the network denies the module's registration")
    silent = ModemProblem(ProblemKind.UNRESPONSIVE, "the module does not answer")
    stale = ModemProblem(ProblemKind.STALE_STATE, "connections from before could not be released")
    manager.issues.problem_changed(denied)
    assert present() == {ProblemKind.REGISTRATION_DENIED}
    manager.issues.problem_changed(silent)  # shown first: denied may still be there
    assert present() == {ProblemKind.UNRESPONSIVE, ProblemKind.REGISTRATION_DENIED}
    manager.issues.problem_changed(stale)  # a later kind shown: the module answers again
    assert present() == {ProblemKind.STALE_STATE, ProblemKind.REGISTRATION_DENIED}
    manager.issues.problem_changed(None)
    assert present() == set()
