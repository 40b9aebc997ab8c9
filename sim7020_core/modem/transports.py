"""The transports one modem has used: built on first use from the plugin manager, told of module resets and
PSM, closed with the modem."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..connection import Transport
from .core import ModemCore


class TransportSet:
    """One instance per transport name, built with ``cls(modem)`` the first time the name is used."""

    def __init__(self, core: ModemCore) -> None:
        self._core = core
        self._transports: dict[str, Transport] = {}

    @property
    def used(self) -> Mapping[str, Transport]:
        """The transports built so far, by name (read-only)."""
        return MappingProxyType(self._transports)

    def get(self, name: str) -> Transport:
        """The transport called ``name`` of this modem.

        :raises PluginError: no plugin provides it (the message lists the available transports)
        """
        found = self._transports.get(name)
        if found is None:
            found = self._core.plugins.transport_class(name)(self._core.modem)
            self._transports[name] = found
        return found

    async def module_reset(self) -> None:
        """The module lost its state: each transport marks its connections and servers gone (bounded)."""
        for transport in list(self._transports.values()):
            await self._core.bounded(transport.on_modem_reset(), f"telling {transport.name!r} of the reset")

    def psm_entered(self) -> None:
        """The module entered PSM: each transport is told in the background (bounded)."""
        core = self._core
        for transport in list(self._transports.values()):
            core.spawn(core.bounded(transport.on_psm(True), f"telling {transport.name!r} of PSM"))

    async def psm_left(self) -> None:
        """The module left PSM: each transport is told, in turn (bounded), before the session settings are
        applied again."""
        for transport in list(self._transports.values()):
            await self._core.bounded(transport.on_psm(False), f"telling {transport.name!r} of the wake")

    async def close(self) -> None:
        """Close every transport (the modem is closing); bounded, failures logged."""
        for transport in list(self._transports.values()):
            await self._core.bounded(transport.close(), f"closing transport {transport.name!r}")
        self._transports.clear()


__all__ = ["TransportSet"]
