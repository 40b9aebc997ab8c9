"""Firmware profiles: the behaviours where real SIM7020-family modules and the application note differ.

The emulator was first written from the vendor's *SIM7020 TCPIP Application Note v1.04* and 3GPP 27.007.
Logs of physical modules show forms and behaviours the note never shows (``docs/emulator.md``, section
*Real modules*, lists each with its public source). Where a capture and the note disagree the capture wins:
the default profile, ``"sim7020"``, behaves like the captured SIM7020. The note's behaviour stays available
where a firmware difference is plausible, as the profile ``"note"``; ``"sim7028"`` is a SIM7028-like variant
(27.007 registration layout, quoted four-digit-year clock). Each behaviour is one switch of
:class:`Profile`, so a test can take a named profile and change a single behaviour::

    Emulator(profile="note")
    Emulator(profile=PROFILES["sim7020"].replace(wake_cpin=False))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

__all__ = ["PROFILES", "ClockStyle", "Profile", "resolve_profile"]

#: ``+CCLK`` forms: ``sim7020`` ``24/04/30,07:49:36+12`` (unquoted); ``sim7028`` ``"2026/03/09,08:41:39+12"``
#: (quoted, four-digit year); ``27.007`` ``"24/04/30,07:49:36+12"`` (quoted, two-digit year).
ClockStyle = Literal["sim7020", "sim7028", "27.007"]


@dataclass(frozen=True, slots=True)
class Profile:
    """One firmware's behaviour where modules differ. See ``docs/emulator.md`` for the source of each."""

    #: the name shown in logs and docs
    name: str
    #: ``+CEREG``/``+CGREG`` carry the extra field ``"00"`` right after ``<AcT>`` (SIM7020 captures)
    registration_extra_field: bool = True
    #: ``+CEREG`` with n=4/5 always shows the two timer fields, ``"11100000"`` (deactivated) when PSM is not
    #: granted (SIMCom's PSM note); otherwise only while PSM is requested (the note-era emulator)
    psm_timers_always: bool = True
    #: after ``AT+CPSMS=1,...`` the network's grant arrives as two ``+CEREG`` URCs (n=4/5), and it takes
    #: effect only then; otherwise the grant applies at once, silently
    grant_urcs: bool = True
    #: the ``+CCLK`` form
    clock: ClockStyle = "sim7020"
    #: on a wake from PSM, ``+CPIN: READY`` comes before ``+CPSMSTATUS: "EXIT PSM"``
    wake_cpin: bool = True
    #: after a wake the module re-registers: ``+CEREG: 2`` then ``+CEREG: 1,...`` (per the URC modes), and
    #: UDP data sent before that is lost
    wake_registration: bool = True
    #: ``AT+CSORCVFLAG`` is back to its default (hex) after every wake, RETENTION or not
    wake_resets_csorcvflag: bool = True
    #: ``AT+CPSMS=0`` with PSM in use answers ``OK`` then ``+CPSMSTATUS: "EXIT PSM"``
    psm_off_exit_urc: bool = True
    #: model and revision reported when the Emulator is not given them
    model: str = "SIM7020E"
    revision: str = "1752B10SIM7020E"

    def replace(self, **changes: object) -> Profile:
        """A copy with some behaviours changed (``name`` included, if given)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_SIM7020 = Profile(name="sim7020")

#: The named profiles. ``sim7020`` is the default.
PROFILES: dict[str, Profile] = {
    "sim7020": _SIM7020,
    "sim7028": _SIM7020.replace(
        name="sim7028",
        registration_extra_field=False,
        clock="sim7028",
        model="SIM7028",
        revision="1752B10SIM7028",
    ),
    "note": Profile(
        name="note",
        registration_extra_field=False,
        psm_timers_always=False,
        grant_urcs=False,
        clock="27.007",
        wake_cpin=False,
        wake_registration=False,
        wake_resets_csorcvflag=False,
        psm_off_exit_urc=False,
    ),
}


def resolve_profile(profile: str | Profile) -> Profile:
    """A :class:`Profile` from its name or itself; ``ValueError`` names the known profiles."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown emulator profile {profile!r}; known: {', '.join(PROFILES)}") from None
