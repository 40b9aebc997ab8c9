"""Repair issues of a modem: what the library says needs a human, and a registration that stays searching.

The library reports what does not heal by itself as :attr:`Modem.problem <sim7020_core.modem.Modem.problem>`
(a :class:`~sim7020_core.events.ProblemChanged` event for each change): the SIM, a module that stays silent,
connections left on the module that cannot be released, a registration the network denies. Each kind is one
repair issue, created when it appears and deleted when it clears. The library shows one problem at a time
(the first kind in :class:`~sim7020_core.models.ProblemKind` order), so a problem shown means every kind
before it is gone (their issues are deleted), while an issue of a later kind stays until the library shows
it cleared (no problem, or an earlier kind than it). A registration that stays ``searching`` for
:data:`SEARCHING_ISSUE_DELAY` seconds is an issue too; it is deleted once the module registers (or stops
searching).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from sim7020_core import Registration
from sim7020_core.models import ModemProblem, ProblemKind

from .const import DOMAIN

if TYPE_CHECKING:
    from . import Sim7020ConfigEntry

#: Seconds a registration may stay ``searching`` before a repair issue says so (NB-IoT registration can take
#: a few minutes in poor coverage; ten minutes is clearly stuck).
SEARCHING_ISSUE_DELAY: Final = 600.0

SEARCHING: Final = "registration_searching"


def problem_issue_id(entry_id: str, kind: ProblemKind) -> str:
    """The repair issue id of a library problem of ``kind`` for the entry ``entry_id``."""
    return f"{kind.value}_{entry_id}"


def searching_issue_id(entry_id: str) -> str:
    """The repair issue id of a registration that stays searching."""
    return f"{SEARCHING}_{entry_id}"


@callback
def async_create_problem_issue(
    hass: HomeAssistant, entry: Sim7020ConfigEntry, kind: ProblemKind, message: str
) -> None:
    """Show the library's problem of ``kind`` (``message`` says what is wrong) as a repair issue."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        problem_issue_id(entry.entry_id, kind),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind.value,
        translation_placeholders={"title": entry.title, "message": message},
    )


@callback
def async_delete_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Delete every issue of the entry that comes from the modem (problems, searching)."""
    for kind in ProblemKind:
        ir.async_delete_issue(hass, DOMAIN, problem_issue_id(entry_id, kind))
    ir.async_delete_issue(hass, DOMAIN, searching_issue_id(entry_id))


class ModemIssues:
    """The repair issues of one running modem."""

    def __init__(self, hass: HomeAssistant, entry: Sim7020ConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self._cancel_searching: Callable[[], None] | None = None

    @callback
    def problem_changed(self, problem: ModemProblem | None) -> None:
        """The library's problem is now ``problem`` (None: nothing needs a human)."""
        kinds = list(ProblemKind)
        shown = kinds.index(problem.kind) if problem is not None else len(kinds)
        for kind in kinds[:shown]:  # the library shows the first kind present: these are gone
            ir.async_delete_issue(self.hass, DOMAIN, problem_issue_id(self.entry.entry_id, kind))
        if problem is not None:
            async_create_problem_issue(self.hass, self.entry, problem.kind, problem.message)

    @callback
    def registration_changed(self, registration: str) -> None:
        """The registration is now ``registration``: start or end the wait for the searching issue."""
        if registration == Registration.SEARCHING:
            if self._cancel_searching is None:
                self._cancel_searching = async_call_later(
                    self.hass, SEARCHING_ISSUE_DELAY, self._searching_for_long
                )
            return
        self._stop_waiting()
        ir.async_delete_issue(self.hass, DOMAIN, searching_issue_id(self.entry.entry_id))

    @callback
    def _searching_for_long(self, _now: datetime) -> None:
        self._cancel_searching = None
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            searching_issue_id(self.entry.entry_id),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=SEARCHING,
            translation_placeholders={
                "title": self.entry.title,
                "minutes": str(round(SEARCHING_ISSUE_DELAY / 60)),
            },
        )

    @callback
    def _stop_waiting(self) -> None:
        if self._cancel_searching is not None:
            self._cancel_searching()
            self._cancel_searching = None

    @callback
    def clear(self) -> None:
        """The modem is no longer watched (entry unloaded): stop waiting and delete its issues."""
        self._stop_waiting()
        async_delete_issues(self.hass, self.entry.entry_id)
