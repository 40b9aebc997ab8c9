"""The SIM800-compatible TCP/IP layer (``AT+CIP*``) shared by the ``cip``, ``transparent`` and
``udp_extended`` transports (application note chapter 6).

The module runs this layer in one of two modes at a time: multi-link (``AT+CIPMUX=1``, six links, used by
``cip``) or single-link (``AT+CIPMUX=0``, used by ``transparent`` and ``udp_extended``). A
:class:`CipSession` per modem owns the bearer (``AT+CSTT`` → ``AT+CIICR`` → ``AT+CIFSR``, following the state
machine of 6.11) and the mode; a transport asks it for a mode with :meth:`CipSession.acquire`, which fails
with a clear error while another transport holds the layer, instead of tearing its connections down.

Recovery (6.13): a failed ``AT+CIPSTART`` is retried once after ``AT+CIPCLOSE`` of the link; if it fails again
and no other link is open, the PDP context is shut (``AT+CIPSHUT``) and brought up again before a last try.
Past that the error tells the caller to restart the module (``Modem.reboot()``).

Stale state (:class:`CipLayerReclaim`, shared by the three transports so the modem runs it once): when a
modem connects, a layer a previous process left beyond ``IP INITIAL`` (links, a server, a data-mode link the
modem escaped from) is shut with ``AT+CIPSHUT`` and its module-wide modes go back to the defaults the
transports start from (``AT+CIPQSEND=0``, ``AT+CIPRXGET=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from sim7020_core import const
from sim7020_core.connection import Connection, Transport
from sim7020_core.exceptions import AtCommandError, NotRegisteredError, Sim7020Error, SocketError

from ._common import UrcHandlers, urc_fields

if TYPE_CHECKING:
    from sim7020_core.at.engine import AtEngine, UrcHandler
    from sim7020_core.connection import TransportHost

_LOGGER = logging.getLogger(__name__)

#: Settings and bearer commands (CIPMUX, CSTT, CIPQSEND, CIPHEAD …).
SETTING_TIMEOUT = 5.0
#: AT+CIICR brings the wireless link up (SIM800 manuals allow 85 s).
CIICR_TIMEOUT = 85.0
#: Waiting for the ``STATE:`` line that follows AT+CIPSTATUS's ``OK``.
CIPSTATUS_TIMEOUT = 5.0
#: Largest payload of one AT+CIPSEND (AT+CIPSEND? answers 1460).
CIPSEND_MAX = 1460

#: Single-link and multi-link states in which the bearer is up (application note 6.11).
BEARER_UP = frozenset(
    {
        "IP STATUS",
        "IP PROCESSING",
        "TCP CONNECTING",
        "UDP CONNECTING",
        "SERVER LISTENING",
        "CONNECT OK",
        "TCP CLOSING",
        "UDP CLOSING",
        "TCP CLOSED",
        "UDP CLOSED",
    }
)

_SESSIONS: weakref.WeakKeyDictionary[TransportHost, CipSession] = weakref.WeakKeyDictionary()


def session_for(modem: TransportHost) -> CipSession:
    """The modem's CIP session (created on first use)."""
    session = _SESSIONS.get(modem)
    if session is None:
        session = _SESSIONS[modem] = CipSession(modem)
    return session


def split_link(line: str) -> tuple[int | None, str]:
    """``"0, CLOSED"`` → ``(0, "CLOSED")``; ``"CLOSED"`` → ``(None, "CLOSED")``.

    Also reads the note's ``0,CLOSED`` and ``1.SEND OK``.
    """
    head, sep, rest = line.partition(",")
    if not sep or not head.strip().isdigit():
        head, sep, rest = line.partition(".")
        if not sep or not head.strip().isdigit():
            return None, line.strip()
    return int(head), rest.strip()


class CipSession:
    """Who holds the module's CIP layer, in which mode, and whether the bearer is up."""

    def __init__(self, modem: TransportHost) -> None:
        self.modem = modem
        self.mux: int | None = None  # the mode the module is in, when known
        self.cipmode: int | None = None  # AT+CIPMODE (1 = transparent), when known
        self.holder: str | None = None  # transport name holding the layer
        self.users = 0  # open connections/servers of the holder
        self.bearer_up = False
        self.local_ip: str | None = None
        self._lock = asyncio.Lock()
        self._engine: AtEngine | None = None

    @property
    def engine(self) -> AtEngine:
        engine = self.modem.engine
        if engine is not self._engine:  # a new link: nothing known about the module's state
            self._engine = engine
            self.reset()
        return engine

    def reset(self) -> None:
        """The module rebooted or the link was reopened: forget everything."""
        self.mux = None
        self.cipmode = None
        self.holder = None
        self.users = 0
        self.bearer_up = False
        self.local_ip = None

    async def acquire(self, transport: str, mux: int, *, cipmode: int = 0) -> None:
        """Make the layer ready for ``transport`` in mode ``mux`` (bearer up) and count one user.

        ``cipmode`` 1 is transparent mode (``AT+CIPMODE=1``, single link only); every other user gets 0. The
        module refuses CIPMODE=1 with CIPMUX=1 and the reverse, so CIPMODE goes to 0 before CIPMUX changes and
        to 1 after.

        :raises SocketError: another transport holds the layer in the other mode
        """
        async with self._lock:
            engine = self.engine
            if self.users and self.holder not in (None, transport):
                raise SocketError(
                    f"the module's SIM800-compatible TCP/IP layer is in use by transport {self.holder!r} "
                    f"(AT+CIPMUX={self.mux}); close its connections before using {transport!r}"
                )
            state = await self.state()
            if state == "PDP DEACT" or (self.mux is not None and self.mux != mux and not self.users):
                await self.shut()
                state = "IP INITIAL"
            if self.mux is None:
                self.mux = await self._read_mux()
            if cipmode == 0 and self.cipmode != 0:
                await engine.command("AT+CIPMODE=0", timeout=SETTING_TIMEOUT)
                self.cipmode = 0
            if self.mux != mux:
                if state != "IP INITIAL":
                    await self.shut()
                    state = "IP INITIAL"
                await engine.command(f"AT+CIPMUX={mux}", timeout=SETTING_TIMEOUT)
                self.mux = mux
            if cipmode == 1 and self.cipmode != 1:
                await engine.command("AT+CIPMODE=1", timeout=SETTING_TIMEOUT)
                self.cipmode = 1
            if state not in BEARER_UP:
                await self._bring_up(state)
            self.bearer_up = True
            self.holder = transport
            self.users += 1

    def release(self) -> None:
        """One user of the layer is gone."""
        self.users = max(0, self.users - 1)
        if not self.users:
            self.holder = None

    async def state(self) -> str:
        """The ``STATE:`` of AT+CIPSTATUS (e.g. ``IP INITIAL``, ``IP STATUS``, ``IP PROCESSING``)."""
        resp = await self.engine.command_with_urcs(
            "AT+CIPSTATUS", "STATE:", timeout=SETTING_TIMEOUT, urc_timeout=CIPSTATUS_TIMEOUT
        )
        return resp.urcs[0].partition(":")[2].strip().upper()

    async def _read_mux(self) -> int:
        resp = await self.engine.command("AT+CIPMUX?", timeout=SETTING_TIMEOUT)
        for line in resp.lines:
            if line.startswith("+CIPMUX"):
                fields = urc_fields(line)
                if fields and fields[0].isdigit():
                    return int(fields[0])
        return 0

    async def _bring_up(self, state: str) -> None:
        """CSTT → CIICR → CIFSR from wherever the bearer stands (6.11)."""
        engine = self.engine
        status = getattr(self.modem, "status", None)
        apn = getattr(status, "apn", None) or ""
        try:
            if state == "IP INITIAL":
                await engine.command(f'AT+CSTT="{apn}"' if apn else "AT+CSTT", timeout=SETTING_TIMEOUT)
                state = "IP START"
            if state == "IP START":
                await engine.command("AT+CIICR", timeout=CIICR_TIMEOUT)
                state = "IP GPRSACT"
            if state in ("IP GPRSACT", "IP CONFIG"):
                # the module answers AT+CIFSR with the bare address and no OK: the engine takes it as final
                resp = await engine.command("AT+CIFSR", timeout=SETTING_TIMEOUT)
                self.local_ip = resp.final if resp.final != "OK" else next(iter(resp.lines), None)
        except AtCommandError as exc:
            raise NotRegisteredError(
                f"cannot bring up the PDP context for the TCP/IP layer ({exc.command}: {exc.final}); "
                "is the modem attached (AT+CGATT?) and the APN right?"
            ) from exc

    async def shut(self) -> None:
        """AT+CIPSHUT: deactivate the context, close every link (back to IP INITIAL)."""
        await self.engine.command("AT+CIPSHUT", timeout=const.CIPSHUT_TIMEOUT)
        self.bearer_up = False
        self.local_ip = None

    async def start(
        self,
        link: int | None,
        protocol: str,
        ip: str,
        port: int,
        *,
        others_open: bool,
        on_shut: Callable[[], None] | None = None,
    ) -> None:
        """AT+CIPSTART with the recovery ladder of 6.13.

        :raises SocketError: the module could not connect, even after CIPCLOSE and CIPSHUT
        """
        target = f'"{protocol.upper()}","{ip}",{port}'
        command = f"AT+CIPSTART={link},{target}" if link is not None else f"AT+CIPSTART={target}"
        close = f"AT+CIPCLOSE={link},1" if link is not None else "AT+CIPCLOSE=1"
        last: Sim7020Error | None = None
        for attempt in range(3):
            try:
                resp = await self.engine.command(
                    command,
                    after_ok=True,
                    final=("CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT"),
                    timeout=const.CIPSTART_TIMEOUT,
                    check=False,
                )
            except AtCommandError as exc:  # pragma: no cover - check=False
                last = exc
                continue
            _, final = split_link(resp.final)
            if final == "CONNECT OK":
                return
            last = SocketError(f"{protocol} connect to {ip}:{port} failed: {resp.final}")
            if final == "CONNECT FAIL" and attempt == 0:
                _LOGGER.debug("CIPSTART failed (%s); retrying after CIPCLOSE (note 6.13)", resp.final)
                try:
                    await self.engine.command(close, timeout=const.CIPCLOSE_TIMEOUT, check=False)
                except Sim7020Error:
                    pass
                continue
            if attempt == 1 and not others_open:
                _LOGGER.debug("CIPSTART failed twice; CIPSHUT and a new context (note 6.13)")
                await self.shut()
                if on_shut is not None:
                    on_shut()
                await self._bring_up("IP INITIAL")
                continue
            break
        raise SocketError(
            f"{last}; the connection could not be opened after CIPCLOSE and CIPSHUT "
            "(application note 6.13 suggests restarting the module: Modem.reboot())"
        )


class CipLayerReclaim:
    """The CIP layer's :meth:`Transport.reclaim <sim7020_core.connection.Transport.reclaim>`, one
    implementation for the ``cip``, ``transparent`` and ``udp_extended`` transports (the modem calls each
    distinct implementation once)."""

    @classmethod
    async def reclaim(cls, modem: TransportHost) -> int:
        """Shut a CIP layer a previous process left in use (``AT+CIPSTATUS`` not ``IP INITIAL``): returns 1
        when it did.

        :raises SocketError: ``AT+CIPSHUT`` failed
        """
        engine = modem.engine
        try:
            resp = await engine.command_with_urcs(
                "AT+CIPSTATUS", "STATE:", timeout=SETTING_TIMEOUT, urc_timeout=CIPSTATUS_TIMEOUT, partial=True
            )
        except AtCommandError:
            return 0  # no CIP layer on this firmware
        if not resp.urcs:
            return 0
        state = resp.urcs[0].partition(":")[2].strip().upper()
        if state == "IP INITIAL":
            return 0
        try:
            await engine.command("AT+CIPSHUT", timeout=const.CIPSHUT_TIMEOUT)
        except AtCommandError as exc:
            raise SocketError(f"the CIP layer left in state {state} could not be shut: {exc.final}") from exc
        for command in ("AT+CIPQSEND=0", "AT+CIPRXGET=0"):
            with contextlib.suppress(AtCommandError):
                await engine.command(command, timeout=SETTING_TIMEOUT)
        return 1


ConnT = TypeVar("ConnT", bound=Connection)


class SingleLinkTransport(CipLayerReclaim, Transport, Generic[ConnT]):
    """What the single-link transports (``transparent``, ``udp_extended``) share: one connection at a time,
    holding the :class:`CipSession` (``AT+CIPMUX=0``) while it is open, and their URC handlers."""

    def __init__(self, modem: TransportHost, urcs: Sequence[tuple[str, UrcHandler]]) -> None:
        super().__init__(modem)
        self._conn: ConnT | None = None
        self._lock = asyncio.Lock()
        self._urcs = UrcHandlers(urcs)

    @property
    def session(self) -> CipSession:
        return session_for(self.modem)

    @contextlib.asynccontextmanager
    async def _opening(
        self, conn: ConnT, *, busy: str, failure: str, cipmode: int = 0
    ) -> AsyncIterator[AtEngine]:
        """Open ``conn`` as the one link: the body gets the engine (URC handlers installed, the CIP layer
        acquired in single-link mode) and runs the commands that connect.

        When the body fails the layer is released and ``conn`` reported closed; an :class:`AtCommandError`
        becomes a :class:`SocketError` ``"<failure>: <final>"``. When it succeeds ``conn`` is the link.

        :raises SocketError: ``busy`` when a link is already open
        """
        async with self._lock:
            if self._conn is not None and not self._conn.closed:
                raise SocketError(busy)
            engine = self._urcs.install(self.modem.engine)
            await self.session.acquire(self.name, 0, cipmode=cipmode)
            try:
                yield engine
            except BaseException as exc:
                self.session.release()
                conn._set_closed(SocketError(failure))
                if isinstance(exc, AtCommandError):
                    raise SocketError(f"{failure}: {exc.final}") from exc
                raise
            self._conn = conn
        self._register(conn)

    def _forget(self, connection: Connection) -> None:
        super()._forget(connection)
        if connection is self._conn:
            self._conn = None
            self.session.release()

    async def on_modem_reset(self) -> None:
        """The module rebooted: the link and the bearer are gone."""
        self.session.reset()
        await super().on_modem_reset()

    async def close(self) -> None:
        """Close the link (the modem is closing) and remove the URC handlers."""
        await super().close()
        self._urcs.remove()
