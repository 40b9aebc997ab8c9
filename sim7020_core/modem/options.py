"""How a :class:`~sim7020_core.modem.Modem` behaves: :class:`ModemOptions`."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..models import NetworkSettings

PsmPolicy = Literal["wait", "fail"]
#: ``wake(modem)`` with the :class:`~sim7020_core.modem.Modem`, plain or async; returns whether the wake-up
#: was triggered (None counts as yes).
WakeCallback = Callable[[Any], "Awaitable[object] | object"]


@dataclass(frozen=True, slots=True)
class ModemOptions:
    """How a :class:`Modem` behaves. Durations are in seconds.

    :param registration_timeout: how long :meth:`Modem.connect` waits for network registration (not
        fatal: the state is reported); 0 does not wait
    :param poll_interval: status polling period (None: no polling; URCs still update the status)
    :param watchdog_interval: period of the watchdog probe, ``AT+CMEE?`` (None: no watchdog)
    :param watchdog_max_failures: unanswered commands in a row (watchdog probes or any other command
        while the module should be awake) before recovery starts

    UART traffic keeps the module awake, so while PSM is enabled the watchdog and the poller stay quiet
    and the module can sleep; status then follows URCs, and unanswered commands still start recovery.
    :param auto_recover: run recovery (resync, reset, reopen) when the session is lost
    :param psm_policy: ``"wait"``: commands wake the module and wait up to ``psm_wake_timeout``;
        ``"fail"``: commands raise :class:`ModemAsleepError` while the module sleeps
    :param psm_wake_timeout: bound on waiting for the module to leave PSM
    :param wake: called as ``wake(modem)`` (plain or async) to wake the module from PSM, for boards that
        wire PWRKEY/DTR to a GPIO; without it the ``sim7020_wake_modem`` hook is tried, then UART activity
    :param sim_busy_retries: retries of a SIM command answered ``+CME ERROR: 14`` (SIM busy)
    :param reconnect_min_delay: first backoff delay of recovery
    :param reconnect_max_delay: cap of the recovery backoff
    :param usage_file: where :attr:`Modem.usage` is kept (JSON), so the running totals of payload bytes
        survive a restart of the process (module reboots never reset them); read at connect, written
        atomically in a worker thread at most every :data:`~sim7020_core.const.USAGE_SAVE_INTERVAL` while
        data flows and on :meth:`Modem.close`. A symbolic link is not followed; a file that cannot be read
        or is not a usage record is logged and counting starts from zero (a corrupt one is kept aside as
        ``<name>.corrupt``). None: the totals start from zero with each :class:`Modem`
    :param network: network settings (APN, PSM, eDRX, bands, operator, fallback DNS) applied at connect
        and kept by the modem, which applies them again after every module reset
        (:attr:`Modem.network_settings`); None leaves the module as it is
    """

    registration_timeout: float = 30.0
    poll_interval: float | None = 60.0
    watchdog_interval: float | None = 30.0
    watchdog_max_failures: int = 3
    auto_recover: bool = True
    psm_policy: PsmPolicy = "wait"
    psm_wake_timeout: float = 30.0
    wake: WakeCallback | None = None
    sim_busy_retries: int = 10
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 60.0
    usage_file: str | os.PathLike[str] | None = None
    network: NetworkSettings | None = None

    def __post_init__(self) -> None:
        if self.psm_policy not in ("wait", "fail"):
            raise ValueError(f"psm_policy must be 'wait' or 'fail', not {self.psm_policy!r}")
        for name in (
            "registration_timeout",
            "psm_wake_timeout",
            "reconnect_min_delay",
            "reconnect_max_delay",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        for name in ("poll_interval", "watchdog_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.watchdog_max_failures < 1:
            raise ValueError(f"watchdog_max_failures must be at least 1, got {self.watchdog_max_failures!r}")
        if self.sim_busy_retries < 0:
            raise ValueError(f"sim_busy_retries must not be negative, got {self.sim_busy_retries!r}")
        if self.usage_file is not None and (
            not isinstance(self.usage_file, str | os.PathLike) or not os.fspath(self.usage_file)
        ):
            raise ValueError(f"usage_file must be a file path or None, got {self.usage_file!r}")


__all__ = ["ModemOptions", "PsmPolicy", "WakeCallback"]
