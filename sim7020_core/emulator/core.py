"""The emulator core: UART line discipline, transports, module state, power and faults.

Command handlers live in command sets (``basic.py``, ``native.py``, ``cip.py``); this module runs them one
at a time, writes their output to every attached UART port (TCP client, pty, in-process listener), and owns
the module's state transitions: boot, registration, the network's PSM grant, PSM sleep and wake, faults.
How the firmware prints and orders things where real modules and the application note differ is the
profile's business (``profiles.py``); the serving cell and the network's grant are in ``radio.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import inspect
import logging
import os
import tty
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .base import (
    CME_NO_NETWORK,
    CME_TEXT,
    CommandError,
    CommandSet,
    DataSink,
    ModemContext,
    ModemState,
    ParseError,
    PsmState,
    Registry,
    parse_command,
)
from .network import LoopbackNetwork
from .profiles import Profile, resolve_profile
from .radio import DEACTIVATED, REQUESTED, VARIANT_BANDS, Cell, Grant, as_cell, as_grant

_LOGGER = logging.getLogger(__name__)

#: Longest command line accepted (bytes); longer input is discarded and answered with ERROR.
MAX_LINE = 4096
#: Seconds a single command handler may take before it is answered with ERROR.
HANDLER_TIMEOUT = 60.0
#: Seconds the UART is dead after a reset, before ``RDY``.
BOOT_TIME = 0.15
#: Seconds between ``AT+CFUN=1`` and the ``+CPIN: READY`` URC.
CPIN_READY_DELAY = 0.05
#: Seconds between ``OK`` to ``AT+CPSMS=1,...`` and each of the two ``+CEREG`` URCs of the network's grant
#: (the grant takes effect with the second).
GRANT_DELAY = 0.05
#: Seconds to wait for a TCP client / pty to take output when stopping.
STOP_TIMEOUT = 2.0
#: Bytes kept for a pty whose reader does not keep up; beyond that output is lost.
PTY_BACKLOG = 1 << 20
#: What ``Emulator(reboot_forgets=...)`` may name.
REBOOT_SETTINGS = frozenset({"apn", "psm", "edrx", "bands", "operator", "dns", "retention"})
#: Pacing granularity (seconds) when ``baudrate`` is set.
PACING_TICK = 0.01

#: Command sets loaded by default, in order (a missing optional module is skipped).
COMMAND_SET_MODULES = (
    "sim7020_core.emulator.basic",
    "sim7020_core.emulator.native",
    "sim7020_core.emulator.cip",
)


def _luhn_complete(body: str) -> str:
    """Append the Luhn check digit (IMEIs carry one)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


DEFAULT_IMEI = _luhn_complete("86971403123456")
DEFAULT_IMSI = "460041234567890"
DEFAULT_ICCID = "89860412345678901234"


@dataclass(frozen=True, slots=True)
class PsmTimings:
    """How the emulated module uses its PSM timers.

    ``auto``: with ``AT+CPSMS=1`` the module falls asleep by itself ``inactivity_s`` + T3324 after the last
    command or network activity, and wakes after T3412 (TAU). ``scale`` multiplies both timers (tests use a
    small value). ``wake_on_uart``: input while asleep wakes the module (the input itself is lost); off by
    default because the real module's UART is dead in PSM.
    """

    auto: bool = True
    inactivity_s: float = 0.5
    scale: float = 1.0
    wake_on_uart: bool = False


def as_psm_timings(value: PsmTimings | Mapping[str, Any] | None) -> PsmTimings:
    """:class:`PsmTimings` from itself, a mapping of its fields, or None (the defaults)."""
    if value is None:
        return PsmTimings()
    if isinstance(value, PsmTimings):
        return value
    try:
        return PsmTimings(**dict(value))
    except TypeError as err:
        raise ValueError(f"bad psm_timings {dict(value)!r}: {err}") from None


_T3412_UNITS = {0: 600.0, 1: 3600.0, 2: 36000.0, 3: 2.0, 4: 30.0, 5: 60.0, 6: 1152000.0}
_T3324_UNITS = {0: 2.0, 1: 60.0, 2: 360.0}


def t3412_seconds(bits: str) -> float | None:
    """Decode a T3412-extended (periodic TAU) bit string; None when deactivated."""
    unit, value = int(bits[:3], 2), int(bits[3:], 2)
    if unit == 7:
        return None
    return _T3412_UNITS[unit] * value


def t3324_seconds(bits: str) -> float | None:
    """Decode a T3324 (active time) bit string; None when deactivated."""
    unit, value = int(bits[:3], 2), int(bits[3:], 2)
    if unit == 7:
        return None
    return _T3324_UNITS.get(unit, 60.0) * value


class _Port(Protocol):
    def write(self, data: bytes) -> None: ...


class _CallbackPort:
    def __init__(self, fn: Callable[[bytes], None]) -> None:
        self.fn = fn

    def write(self, data: bytes) -> None:
        self.fn(data)


class _StreamPort:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class _PtyPort:
    """Non-blocking writes to a pty master; leftovers wait for ``add_writer``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, master: int, slave: int, path: str) -> None:
        self.loop = loop
        self.master = master
        self.slave = slave
        self.path = path
        self.pending = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.pending:
            if len(self.pending) < PTY_BACKLOG:  # nobody reads the tty: later bytes are lost, as on a UART
                self.pending += data
            return
        try:
            n = os.write(self.master, data)
        except BlockingIOError:
            n = 0
        except OSError as err:
            _LOGGER.debug("emulator: pty write failed: %s", err)
            return
        if n < len(data):
            self.pending += data[n:]
            self.loop.add_writer(self.master, self._flush)

    def _flush(self) -> None:
        try:
            n = os.write(self.master, bytes(self.pending))
        except BlockingIOError:
            return
        except OSError:
            n = len(self.pending)
        del self.pending[:n]
        if not self.pending:
            self.loop.remove_writer(self.master)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.master)
        self.loop.remove_writer(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Emulator(ModemContext):
    """An emulated SIM7020 module speaking real AT bytes over TCP, a pty, or in process.

    See ``docs/emulator.md``. The public API is the constructor, ``start_tcp``, ``start_pty``, ``stop``,
    ``route``, ``server_address``, ``transcript``, ``profile``, ``cell``, ``grant``, and the fault and
    network methods (``reboot``, ``set_signal``, ``detach``, ``attach``, ``socket_error``, ``enter_psm``,
    ``exit_psm``, ``change_cell``, ``set_grant``, ``inject_garbage``, ``drop_next_response``, ``stall``,
    ``sim_busy_at_boot``). The ``ModemContext`` methods (``reply``, ``ok``, ...) are for command sets.
    """

    def __init__(
        self,
        hosts: Mapping[str, str | Sequence[str]] | None = None,
        *,
        routes: Mapping[str, str] | None = None,
        registration_delay: float = 0.2,
        baudrate: int | None = None,
        echo: bool = True,
        imei: str = DEFAULT_IMEI,
        imsi: str = DEFAULT_IMSI,
        iccid: str = DEFAULT_ICCID,
        manufacturer: str = "SIMCOM_Ltd",
        model: str | None = None,
        revision: str | None = None,
        apn: str = "iot.example",
        local_ip: str = "10.250.0.213",
        operator: str = "CHN-UNICOM",
        csq: int = 20,
        psm_timings: PsmTimings | Mapping[str, Any] | None = None,
        time_scale: float = 1.0,
        transcript: bool = False,
        command_sets: Sequence[str] | None = None,
        guard_time: float | None = None,
        profile: str | Profile = "sim7020",
        cell: Cell | Mapping[str, Any] | None = None,
        grant: Grant | Mapping[str, Any] | None = None,
        timezone: int = 0,
        wake_registration_delay: float | None = None,
        plmn: str = "46001",
        network_dns: Sequence[str] = ("10.250.0.1", "10.250.0.2"),
        reboot_forgets: Iterable[str] = ("dns",),
    ) -> None:
        #: the firmware behaviour (``profiles.py``): ``"sim7020"`` (as captured), ``"sim7028"``, ``"note"``
        self.profile: Profile = resolve_profile(profile)
        #: the serving cell and its neighbours (``change_cell`` moves the module)
        self.cell: Cell = as_cell(cell)
        #: what the network grants for PSM and eDRX requests (``set_grant`` changes it)
        self.grant: Grant = as_grant(grant)
        if not -96 <= timezone <= 96:
            raise ValueError(f"timezone is in quarter hours (-96..96), got {timezone}")
        #: the network's time zone in quarter hours, as ``+CCLK`` prints it (``+12`` is UTC+3)
        self.timezone = timezone
        self.net: LoopbackNetwork = LoopbackNetwork(hosts, routes)
        self.registration_delay = registration_delay
        #: seconds from a wake to ``+CEREG: 1`` (``wake_registration`` profiles); default registration_delay
        self.wake_registration_delay = (
            registration_delay if wake_registration_delay is None else wake_registration_delay
        )
        self.baudrate = baudrate
        self.imei, self.imsi, self.iccid = imei, imsi, iccid
        self.manufacturer = manufacturer
        self.model = self.profile.model if model is None else model
        self.revision = self.profile.revision if revision is None else revision
        self.psm_timings = as_psm_timings(psm_timings)
        #: multiplies module-internal waits (ping timeouts); PSM timers use ``psm_timings.scale``
        self.time_scale = time_scale
        self.state = ModemState(echo=echo, apn=apn, local_ip=local_ip, operator=operator, csq=csq)
        #: the network's numeric id (MCCMNC), for ``AT+COPS`` (the note's CHN-UNICOM is 46001)
        self.plmn = plmn
        #: the DNS servers the network hands out (``AT+CDNSCFG?``); () = none, ``0.0.0.0`` is shown
        self.network_dns: tuple[str, ...] = tuple(network_dns)[:2]
        #: DNS servers that do not answer (``dns_server_down``)
        self.dead_dns: set[str] = set()
        forgets = frozenset(reboot_forgets)
        if forgets - REBOOT_SETTINGS:
            raise ValueError(
                f"reboot_forgets: unknown setting(s) {sorted(forgets - REBOOT_SETTINGS)}; "
                f"known: {sorted(REBOOT_SETTINGS)}"
            )
        #: the settings a reboot loses (the others are kept, as in non-volatile memory)
        self.reboot_forgets = forgets
        self._default_apn = apn
        self.registry = Registry()
        self.transcript: list[tuple[str, bytes]] = []
        self._record = transcript
        self._transcript_listeners: list[Callable[[str, bytes], None]] = []
        self.command_sets: dict[str, CommandSet] = {}
        for modname in command_sets if command_sets is not None else COMMAND_SET_MODULES:
            self._load_command_set(modname)
        if guard_time is not None:  # the +++ guard time of transparent mode (1 s on the module, note 6.14.4)
            cip = self.command_sets.get("cip")
            if cip is None:
                raise ValueError("guard_time needs the CIP command set (transparent mode)")
            cip.guard_time = guard_time  # type: ignore[attr-defined]  # validated there; survives reboots

        self._ports: list[_Port] = []
        self._inbuf = bytearray()
        self._sink: DataSink | None = None
        self._input_event: asyncio.Event | None = None
        self._processor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._servers: list[asyncio.Server] = []
        self._tcp_writer: asyncio.StreamWriter | None = None
        self._ptys: list[_PtyPort] = []
        self._pacer_queue: asyncio.Queue[bytes] | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._wire_queue: asyncio.Queue[bytes] | None = None
        self._wire: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

        self._booting = False
        self._stalled = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._drop_pending = False
        self._dropping = False
        self._sim_busy_per_boot = 0
        self._sim_busy_left = 0
        self._last_line = ""
        self._reg_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._tau_timer: asyncio.TimerHandle | None = None
        #: woken from PSM, not registered again yet (``+CEREG: 2`` until ``+CEREG: 1``)
        self._waking = False

    # ------------------------------------------------------------------------------------ command sets

    def _load_command_set(self, modname: str) -> None:
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as err:
            if err.name != modname:
                raise
            _LOGGER.debug("emulator: command set %s not available", modname)
            return
        factory = getattr(module, "create_command_set", None)
        if factory is None:
            _LOGGER.warning("emulator: %s has no create_command_set()", modname)
            return
        cset = factory(self)
        cset.register(self.registry)
        self.command_sets[modname.rsplit(".", 1)[-1]] = cset

    def _notify(self, method: str, *args: Any) -> None:
        for cset in list(self.command_sets.values()):
            try:
                getattr(cset, method)(*args)
            except Exception:
                _LOGGER.exception("emulator: %s.%s failed", type(cset).__name__, method)

    # --------------------------------------------------------------------------------------- lifecycle

    def _ensure_started(self) -> None:
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._input_event = asyncio.Event()
        self._processor = loop.create_task(self._process(), name="sim7020-emulator")
        if self.baudrate:
            self._pacer_queue = asyncio.Queue()
            self._pacer = loop.create_task(
                self._paced(self._pacer_queue, self._write_ports), name="sim7020-emulator-tx"
            )
            self._wire_queue = asyncio.Queue()
            self._wire = loop.create_task(
                self._paced(self._wire_queue, self._deliver), name="sim7020-emulator-rx"
            )
        self._power_on()

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve the AT interface over TCP (one client at a time; a new client replaces the old one)."""
        self._ensure_started()
        server = await asyncio.start_server(self._on_tcp_client, host, port)
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def _on_tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        old = self._tcp_writer
        if old is not None:
            _LOGGER.info("emulator: new TCP client replaces the old one")
            old.close()
        self._tcp_writer = writer
        port = _StreamPort(writer)
        self._ports.append(port)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                self.feed(data)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._ports.remove(port)
            if self._tcp_writer is writer:
                self._tcp_writer = None
            writer.close()

    async def start_pty(self, link: str | None = None) -> str:
        """Serve the AT interface on a new pseudo-terminal; returns its path (or ``link``, a symlink)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        port = _PtyPort(loop, master, slave, path)
        self._ptys.append(port)
        self._ports.append(port)

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self.feed(data)

        loop.add_reader(master, readable)
        if link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(path, link)
            return link
        return path

    def attach_port(self, write: Callable[[bytes], None]) -> Callable[[], None]:
        """In-process UART: ``write`` gets all output; feed input with :meth:`feed`. Returns a detacher."""
        self._ensure_started()
        port = _CallbackPort(write)
        self._ports.append(port)

        def detach() -> None:
            with contextlib.suppress(ValueError):
                self._ports.remove(port)

        return detach

    def add_transcript_listener(self, fn: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Call ``fn(direction, data)`` for every byte block in (``"rx"``) and out (``"tx"``)."""
        self._transcript_listeners.append(fn)
        return lambda: self._transcript_listeners.remove(fn)

    async def stop(self) -> None:
        """Stop serving, close every real socket, cancel timers and tasks."""
        if self._stopped:
            return
        self._stopped = True
        for server in self._servers:
            server.close()
        if self._tcp_writer is not None:
            self._tcp_writer.close()
        for p in self._ptys:
            p.close()
        self._cancel_all()
        for cset in list(self.command_sets.values()):
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await cset.aclose()
            except Exception:
                _LOGGER.exception("emulator: closing %s failed", type(cset).__name__)
        for task in (self._processor, self._pacer, self._wire):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await server.wait_closed()
        self._ports.clear()

    async def __aenter__(self) -> Emulator:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _cancel_all(self) -> None:
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        for t in list(self._tasks):
            t.cancel()
        for h in (self._reg_timer, self._idle_timer, self._tau_timer, self._stall_timer):
            if h is not None:
                h.cancel()
        self._reg_timer = self._idle_timer = self._tau_timer = self._stall_timer = None

    # ------------------------------------------------------------------------------------------- network

    def route(self, remote_ip: str, remote_port: int | None, to: tuple[str, int] | str) -> None:
        """Map the note address ``remote_ip[:remote_port]`` onto a loopback peer ``to``."""
        self.net.route(remote_ip, remote_port, to)

    def server_address(self, modem_port: int, protocol: str = "tcp") -> tuple[str, int]:
        """Where a server opened on the module's ``modem_port`` (CSOLIS / CIPSERVER) really listens."""
        return self.net.server_address(modem_port, protocol)

    # ------------------------------------------------------------------------------------------- output

    def _transmit(self, data: bytes) -> None:
        if self._record:
            self.transcript.append(("tx", data))
        for fn in list(self._transcript_listeners):
            fn("tx", data)
        if self._pacer_queue is not None:
            self._pacer_queue.put_nowait(data)
            return
        self._write_ports(data)

    def _write_ports(self, data: bytes) -> None:
        for port in list(self._ports):
            port.write(data)

    async def _paced(self, queue: asyncio.Queue[bytes], deliver: Callable[[bytes], None]) -> None:
        """Pass bytes on at ``baudrate`` / 10 bytes per second, in slices of ``PACING_TICK``: each slice is
        delivered when its last byte would have crossed the wire (a virtual clock, so no drift)."""
        loop = asyncio.get_running_loop()
        clock = 0.0
        while True:
            data = await queue.get()
            rate = max(1.0, (self.baudrate or 115200) / 10.0)
            step = max(1, int(rate * PACING_TICK))
            clock = max(clock, loop.time())
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                clock += len(piece) / rate
                delay = clock - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                deliver(piece)

    def _out(self, data: bytes, *, response: bool) -> None:
        if not data or self._stalled or self._booting or self.asleep:
            return
        if response and self._dropping:
            return
        self._transmit(data)

    def reply(self, *lines: str) -> None:
        """Send information lines, each as ``\\r\\n<line>\\r\\n``."""
        self._out(b"".join(b"\r\n" + line.encode("latin-1") + b"\r\n" for line in lines), response=True)

    def reply_block(self, *lines: str) -> None:
        """Send information lines as one block: ``\\r\\n<line>\\r\\n<line>...\\r\\n``."""
        if lines:
            self._out(b"\r\n" + "\r\n".join(lines).encode("latin-1") + b"\r\n", response=True)

    def ok(self) -> None:
        """Final result ``OK``."""
        self._out(b"\r\nOK\r\n", response=True)

    def final(self, text: str) -> None:
        """Another final result line."""
        self._out(b"\r\n" + text.encode("latin-1") + b"\r\n", response=True)

    def error(self, cme: int | None = None) -> None:
        """``ERROR``, or ``+CME ERROR: <n>`` / ``+CME ERROR: <text>`` with ``cme`` and CMEE 1/2."""
        if cme is None or self.state.cmee == 0:
            self.final("ERROR")
        elif self.state.cmee == 1:
            self.final(f"+CME ERROR: {cme}")
        else:
            self.final(f"+CME ERROR: {CME_TEXT.get(cme, str(cme))}")

    def urc(self, line: str, payload: bytes = b"") -> None:
        """Unsolicited line (with an optional raw payload before the closing CRLF)."""
        self._out(b"\r\n" + line.encode("latin-1") + payload + b"\r\n", response=False)

    def write(self, data: bytes) -> None:
        """Raw bytes to the UART."""
        self._out(data, response=False)

    def inject_garbage(self, data: bytes) -> None:
        """Fault: write ``data`` to the UART as is (line noise, a half URC...)."""
        self._out(data, response=False)

    # -------------------------------------------------------------------------------------------- input

    def feed(self, data: bytes) -> None:
        """UART input (used by the transports; tests may call it directly with :meth:`attach_port`)."""
        self._ensure_started()
        if self._record:
            self.transcript.append(("rx", data))
        for fn in list(self._transcript_listeners):
            fn("rx", data)
        if self._wire_queue is not None:
            self._wire_queue.put_nowait(data)  # arrives at the baud rate
            return
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        """Bytes that crossed the wire reach the module's UART."""
        if self._stalled or self._booting or self._stopped:
            return
        if self.asleep:
            if self.psm_timings.wake_on_uart:
                self.exit_psm()
            return
        self._inbuf += data
        assert self._input_event is not None
        self._input_event.set()

    def expect_data(self, sink: DataSink) -> None:
        """Route all UART input to ``sink`` until it returns a count or :meth:`end_data` is called."""
        self._sink = sink
        if self._inbuf and self._input_event is not None:
            self._input_event.set()

    def end_data(self) -> None:
        """Leave data mode."""
        self._sink = None
        if self._inbuf and self._input_event is not None:
            self._input_event.set()

    @property
    def in_data_mode(self) -> bool:
        """True while a data sink is installed."""
        return self._sink is not None

    async def _process(self) -> None:
        assert self._input_event is not None
        while True:
            await self._input_event.wait()
            self._input_event.clear()
            while self._inbuf and not self._stopped:
                if self._sink is not None:
                    chunk = bytes(self._inbuf)
                    self._inbuf.clear()
                    try:
                        used = self._sink(chunk)
                    except Exception:
                        _LOGGER.exception("emulator: data sink failed")
                        self._sink = None
                        self.error()
                        continue
                    if used is not None:
                        self._sink = None
                        self._inbuf[:0] = chunk[max(0, used) :]
                    continue
                line, term = self._take_line()
                if line is None:
                    break
                await self._run_line(line, term)

    def _take_line(self) -> tuple[bytes | None, bytes]:
        buf = self._inbuf
        # a LF right after the CR that ended the previous line belongs to that line
        cr, lf = buf.find(b"\r"), buf.find(b"\n")
        ends = [i for i in (cr, lf) if i >= 0]
        if not ends:
            if len(buf) > MAX_LINE:
                buf.clear()
                self.error()
            return None, b""
        end = min(ends)
        term_len = 2 if buf[end : end + 2] == b"\r\n" else 1
        line = bytes(buf[:end])
        term = bytes(buf[end : end + term_len])
        del buf[: end + term_len]
        return line, term

    async def _run_line(self, raw: bytes, term: bytes) -> None:
        # backspace editing, then leading noise/whitespace
        chars: list[str] = []
        for ch in raw.decode("latin-1"):
            if ch == "\x08":
                if chars:
                    chars.pop()
            else:
                chars.append(ch)
        text = "".join(chars).lstrip(" \t\x00")
        if text.upper() == "A/":
            text = self._last_line
        is_command = text[:2].upper() == "AT"
        # a dropped response is the next real command's (echo included)
        self._dropping = is_command and self._drop_pending
        if self._dropping:
            self._drop_pending = False
        try:
            if self.state.echo:
                self._out(raw + term, response=True)
            if not is_command:
                if text:
                    _LOGGER.debug("emulator: ignoring non-AT line %r", text)
                return
            self._last_line = text
            await self._execute(text)
        finally:
            self._dropping = False

    async def _execute(self, text: str) -> None:
        try:
            cmd = parse_command(text)
        except ParseError:
            self.error()
            return
        handler = self.registry.lookup(cmd.name)
        if handler is None:
            self.error()
            return
        self._touch()
        try:
            result = handler(self, cmd)
            if inspect.isawaitable(result):
                async with asyncio.timeout(HANDLER_TIMEOUT):
                    await result
        except CommandError as err:
            _LOGGER.debug("emulator: %s -> %s", text, err)
            self.error(err.cme)
        except TimeoutError:
            _LOGGER.warning("emulator: %s timed out", text)
            self.error()
        except Exception:
            _LOGGER.exception("emulator: handler for %s failed", cmd.name)
            self.error()

    # ------------------------------------------------------------------------------------ timers, tasks

    def call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        """Run ``fn`` after ``delay`` seconds (cancelled on stop and reboot)."""
        loop = asyncio.get_running_loop()
        holder: list[asyncio.TimerHandle] = []

        def run() -> None:
            self._timers.discard(holder[0])
            try:
                fn()
            except Exception:
                _LOGGER.exception("emulator: timer callback failed")

        handle = loop.call_later(delay, run)
        holder.append(handle)
        self._timers.add(handle)
        return handle

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a background task owned by the emulator (cancelled on stop and reboot, errors logged)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                _LOGGER.error("emulator: task failed", exc_info=t.exception())

        task.add_done_callback(done)

    # ------------------------------------------------------------------------------ registration, power

    def require_service(self) -> None:
        """Raise unless registered, attached and the PDN is active."""
        if not self.state.has_service:
            raise CommandError(CME_NO_NETWORK, "no PS service")

    def _power_on(self) -> None:
        """Radio on: search, then register after ``registration_delay``."""
        self.state.cfun = 1
        self.state.reg_stat = 2
        self._set_reg_timer(self.registration_delay)

    def _set_reg_timer(self, delay: float, *, wake: bool = False) -> None:
        if self._reg_timer is not None:
            self._reg_timer.cancel()
        self._reg_timer = asyncio.get_running_loop().call_later(
            delay, functools.partial(self._registered, wake=wake)
        )

    def _registered(self, *, wake: bool = False) -> None:
        """Registered (after power-on, ``AT+CFUN=1``, ``attach()`` or a wake from PSM)."""
        self._reg_timer = None
        self._end_wake()
        if self.state.cfun != 1:
            return
        if not self.can_register():  # band lock or manual operator: the network is not found
            self.state.reg_stat = 2
            return
        self.state.reg_stat = 1
        self.state.attached = True
        self.state.pdn_active = True
        if not wake:  # an attach negotiates PSM afresh; a wake keeps the grant in force
            self._apply_grant(self._negotiated(), urc=False)
        self._registration_urcs()
        if wake:
            self._notify("on_ready")
        self._touch()

    def _end_wake(self) -> None:
        self._waking = False
        self.net.radio_up = True

    # ------------------------------------------------------------------------- registration answers

    def registration_tail(self, command: Literal["+CREG", "+CGREG", "+CEREG"], n: int) -> str:
        """What follows ``<stat>`` in a ``+CREG``/``+CGREG``/``+CEREG`` read answer or URC for URC mode ``n``.

        Empty unless registered and ``n >= 2``. Then ``,"<tac>","<ci>",9``; ``+CGREG``/``+CEREG`` add the
        SIM7020's extra ``,"00"`` (profile ``registration_extra_field``), the cause fields (``0,0`` for
        n=3 and 5, empty for n=4) and for n=4/5 the granted Active-Time and periodic TAU.
        """
        st = self.state
        if n < 2 or st.reg_stat not in (1, 5):
            return ""
        tail = f',"{self.cell.tac}","{self.cell.cell_id}",9'
        if command == "+CREG":
            return tail
        if self.profile.registration_extra_field:
            tail += ',"00"'
        if n == 2:
            return tail
        causes = ",," if n == 4 else ",0,0"
        if n == 3:
            return tail + causes
        if not (self.profile.psm_timers_always or st.psm_mode == 1):
            return tail + ("" if n == 4 else causes)
        return tail + f'{causes},"{st.psm_grant_active}","{st.psm_grant_tau}"'

    def _registration_urcs(self, *, only: str | None = None) -> None:
        """The registration URCs the modes ask for, in the order a SIM7020 prints them (+CREG, +CGREG,
        +CEREG)."""
        st = self.state
        modes: tuple[tuple[Literal["+CREG", "+CGREG", "+CEREG"], int], ...] = (
            ("+CREG", st.creg_n),
            ("+CGREG", st.cgreg_n),
            ("+CEREG", st.cereg_n),
        )
        for command, n in modes:
            if n >= 1 and (only is None or only == command):
                self.urc(f"{command}: {st.reg_stat}{self.registration_tail(command, n)}")

    def change_cell(self, **fields: Any) -> None:
        """Network event: the module is now on another cell (fields of :class:`~.radio.Cell`, e.g.
        ``cell_id="000A700B"``). A new TAC or cell id is announced with ``+CREG``, ``+CGREG``, ``+CEREG``
        URCs (per their modes), as a real SIM7020 does on a cell change."""
        old = self.cell
        self.cell = old.replace(**fields)
        moved = (old.tac, old.cell_id) != (self.cell.tac, self.cell.cell_id)
        if moved and self._started and self.state.reg_stat in (1, 5) and not self.asleep:
            self._registration_urcs()

    # ------------------------------------------------------------------------------ the network's grant

    def _negotiated(self) -> tuple[str, str]:
        """(Active-Time, periodic TAU) the network grants for the current ``AT+CPSMS`` request."""
        st = self.state
        if st.psm_mode != 1:
            return DEACTIVATED, DEACTIVATED
        active = st.psm_active if self.grant.active_time == REQUESTED else self.grant.active_time
        tau = st.psm_tau if self.grant.periodic_tau == REQUESTED else self.grant.periodic_tau
        return active, tau

    def _apply_grant(self, granted: tuple[str, str], *, urc: bool) -> None:
        """Put ``granted`` in force; ``urc``: announce it with ``+CEREG`` (only n=4/5 show the timers)."""
        st = self.state
        st.psm_grant_active, st.psm_grant_tau = granted
        if urc and st.reg_stat in (1, 5) and st.cereg_n >= 4:
            self._registration_urcs(only="+CEREG")
        self._touch()

    def psm_settings_changed(self) -> None:
        """``AT+CPSMS`` changed the request (called after its ``OK``): the network answers it.

        Registered and with the profile's ``grant_urcs``, a request for PSM is answered like on a real
        SIM7020: a ``+CEREG`` URC with the grant in force while the tracking area update runs, then one with
        the new grant, which takes effect with it (URCs only with ``AT+CEREG=4/5``). Otherwise the grant
        applies at once; without registration it is negotiated at the next registration.
        """
        st = self.state
        if st.cfun != 1 or st.reg_stat not in (1, 5):
            self._touch()
            return
        if self.profile.grant_urcs and st.psm_mode == 1:
            self.call_later(GRANT_DELAY, lambda: self._apply_grant(self._granted(), urc=True))
            self.call_later(2 * GRANT_DELAY, lambda: self._apply_grant(self._negotiated(), urc=True))
            self._touch()
            return
        self._apply_grant(self._negotiated(), urc=False)

    def _granted(self) -> tuple[str, str]:
        """The grant in force: (Active-Time, periodic TAU)."""
        return self.state.psm_grant_active, self.state.psm_grant_tau

    def set_grant(self, grant: Grant | Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Network change: what it grants from now on (a :class:`~.radio.Grant`, a mapping, or some of its
        fields: ``set_grant(periodic_tau="11100000")``). While registered with PSM requested, a changed
        grant takes effect at once and is announced with a ``+CEREG`` URC (n=4/5), like a tracking area
        update the network started."""
        base = self.grant if grant is None else as_grant(grant)
        self.grant = base.replace(**fields) if fields else base
        st = self.state
        if not self._started or st.cfun != 1 or st.reg_stat not in (1, 5) or self.asleep:
            return
        granted = self._negotiated()
        if granted != self._granted():
            self._apply_grant(granted, urc=self.profile.grant_urcs)

    def radio_off(self) -> None:
        """``AT+CFUN=0``: deregister, lose the PDN (command sets are told)."""
        if self._reg_timer is not None:
            self._reg_timer.cancel()
            self._reg_timer = None
        self._end_wake()
        self.state.cfun = 0
        was = self.state.reg_stat
        self._lose_service(reg_stat=0)
        if was != 0:
            self._registration_urcs()

    def radio_on(self) -> None:
        """``AT+CFUN=1``: ``+CPIN: READY`` shortly after, registration after ``registration_delay``."""
        if self.state.cfun == 1:
            return
        self.state.cfun = 1
        self.state.reg_stat = 2
        self.call_later(CPIN_READY_DELAY, lambda: self.urc("+CPIN: READY"))
        self._set_reg_timer(self.registration_delay)

    def _lose_service(self, reg_stat: int | None = None) -> None:
        had = self.state.attached or self.state.pdn_active
        if reg_stat is not None:
            self.state.reg_stat = reg_stat
        self.state.attached = False
        self.state.pdn_active = False
        if had:
            self._notify("on_detach")

    def detach(self, reg_stat: int = 0) -> None:
        """Fault: the network detaches the module (sockets fail, CGATT? shows 0).

        ``reg_stat`` is the 3GPP TS 27.007 ``<stat>`` the registration URCs and reads show from then on:
        0 not registered (default), 2 searching, 3 registration denied, 4 unknown. ``attach()`` registers
        the module again.
        """
        if reg_stat not in (0, 2, 3, 4):
            raise ValueError(f"reg_stat must be 0, 2, 3 or 4 (not registered), not {reg_stat!r}")
        if self._waking:  # the wake's re-registration will not come
            if self._reg_timer is not None:
                self._reg_timer.cancel()
                self._reg_timer = None
            self._end_wake()
        self._lose_service(reg_stat=reg_stat)
        self._registration_urcs()

    def attach(self) -> None:
        """Fault recovery: registered, attached and the PDN active again, now."""
        if self.state.cfun != 1:
            return
        if self._reg_timer is not None:
            self._reg_timer.cancel()
        self._registered()

    def set_attached(self, attached: bool) -> None:
        """``AT+CGATT=0/1`` (used by the basic command set)."""
        if attached:
            self.state.attached = True
            self.state.pdn_active = True
        else:
            self._lose_service()

    def set_pdn(self, active: bool) -> None:
        """``AT+CGACT=0/1,1``."""
        if active:
            self.state.pdn_active = True
        elif self.state.pdn_active:
            self.state.pdn_active = False
            self._notify("on_detach")

    def set_signal(self, csq: int | None = None, ber: int | None = None) -> None:
        """Fault: change what ``AT+CSQ`` reports (``csq`` 0-31 or 99, ``ber`` 0-7 or 99)."""
        if csq is not None:
            if not (0 <= csq <= 31 or csq == 99):
                raise ValueError(f"csq must be 0..31 or 99, got {csq}")
            self.state.csq = csq
        if ber is not None:
            if not (0 <= ber <= 7 or ber == 99):
                raise ValueError(f"ber must be 0..7 or 99, got {ber}")
            self.state.ber = ber

    def socket_error(self, sock_id: int, code: int) -> None:
        """Fault: native socket ``sock_id`` fails with ``+CSOERR: <sock_id>,<code>`` and is closed."""
        from .native import NativeCommands

        native = self.command_sets.get("native")
        if not isinstance(native, NativeCommands):
            raise RuntimeError("the native command set is not loaded")  # noqa: TRY004
        native.inject_error(sock_id, code)

    def drop_next_response(self) -> None:
        """Fault: the next command runs, but its echo and response are lost (URCs still arrive)."""
        self._drop_pending = True

    def stall(self, seconds: float | None = None) -> None:
        """Fault: stop answering (input is discarded, nothing is sent) for ``seconds``, or until
        :meth:`unstall` when None."""
        self._stalled = True
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if seconds is not None:
            self._stall_timer = asyncio.get_running_loop().call_later(seconds, self.unstall)

    def unstall(self) -> None:
        """End a :meth:`stall`."""
        self._stalled = False
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def sim_busy_at_boot(self, n: int) -> None:
        """Fault: the first ``n`` SIM commands (CPIN?, CIMI, CCID) answer ``+CME ERROR: 14`` (SIM busy),
        now and after every later reboot (``n=0`` turns it off)."""
        self._sim_busy_per_boot = self._sim_busy_left = max(0, n)

    def consume_sim_busy(self) -> bool:
        """For SIM commands: True (answer SIM busy) while the boot-time busy count lasts."""
        if self._sim_busy_left > 0:
            self._sim_busy_left -= 1
            return True
        return False

    def reboot(self) -> None:
        """Reset the module: sockets and volatile settings are lost, echo is back on, ``RDY`` and
        ``+CPIN: READY`` follow, then registration. APN, PSM, eDRX, band lock, operator selection and
        RETENTION persist (NV) unless named in ``reboot_forgets`` (default: the DNS servers set with
        ``AT+CDNSCFG`` are lost)."""
        self._ensure_started()
        self._notify("on_reboot")
        self._cancel_all()
        old = self.state
        self.state = ModemState(
            echo=True,
            apn=old.apn,
            pdp_type=old.pdp_type,
            apn_user=old.apn_user,
            apn_password=old.apn_password,
            local_ip=old.local_ip,
            operator=old.operator,
            csq=old.csq,
            ber=old.ber,
            psm_mode=old.psm_mode,
            psm_tau=old.psm_tau,
            psm_active=old.psm_active,
            retention=old.retention,
            ipr=old.ipr,
            edrx_mode=old.edrx_mode,
            edrx_value=old.edrx_value,
            bands=old.bands,
            cops_mode=old.cops_mode,
            cops_format=old.cops_format,
            cops_plmn=old.cops_plmn,
            dns=old.dns,
        )
        self._forget_on_reboot()
        self._end_wake()
        self._inbuf.clear()
        self._sink = None
        self._stalled = False  # a reset un-hangs a stalled module
        self._drop_pending = False
        self._sim_busy_left = self._sim_busy_per_boot
        self._booting = True
        self.state.cfun = 0
        self._reg_timer = asyncio.get_running_loop().call_later(BOOT_TIME, self._boot_done)

    def _forget_on_reboot(self) -> None:
        """Back to the defaults of what ``reboot_forgets`` names."""
        st, default = self.state, ModemState()
        forgets = self.reboot_forgets
        if "apn" in forgets:
            st.apn, st.pdp_type, st.apn_user, st.apn_password = self._default_apn, "IP", "", ""
        if "psm" in forgets:
            st.psm_mode, st.psm_tau, st.psm_active = default.psm_mode, default.psm_tau, default.psm_active
        if "edrx" in forgets:
            st.edrx_mode, st.edrx_value = default.edrx_mode, default.edrx_value
        if "bands" in forgets:
            st.bands = None
        if "operator" in forgets:
            st.cops_mode, st.cops_format, st.cops_plmn = 0, 0, ""
        if "dns" in forgets:
            st.dns = None
        if "retention" in forgets:
            st.retention = default.retention

    # ------------------------------------------------------------------------------- network settings

    def supported_bands(self) -> tuple[int, ...]:
        """The bands of the emulated variant (application note, chapter 1; by ``model``)."""
        for variant, bands in VARIANT_BANDS.items():
            if variant in self.model.upper():
                return bands
        return VARIANT_BANDS["SIM7020G"]

    def can_register(self) -> bool:
        """Whether the module finds the network: its cell's band is not locked out and, in manual
        selection, the selected PLMN is this network's."""
        st = self.state
        bands = st.bands if st.bands is not None else self.supported_bands()
        if self.cell.band not in bands or st.cops_mode == 2:
            return False
        return st.cops_mode != 1 or st.cops_plmn == self.plmn

    def register_again(self) -> None:
        """A band lock or operator selection changed: search, and register again when allowed."""
        if self.state.cfun != 1:
            return
        self._lose_service(reg_stat=2)
        self._registration_urcs()
        self._set_reg_timer(self.registration_delay)

    def radio_off_network(self) -> None:
        """``AT+COPS=2``: deregistered until another selection."""
        if self._reg_timer is not None:
            self._reg_timer.cancel()
            self._reg_timer = None
        self._lose_service(reg_stat=0)
        self._registration_urcs()

    def dns_in_effect(self) -> tuple[str, str]:
        """(primary, secondary) as ``AT+CDNSCFG?`` shows them: set ones, else the network's, else 0.0.0.0."""
        if self.state.dns is not None:
            return self.state.dns
        servers = (*self.network_dns, "0.0.0.0", "0.0.0.0")
        return servers[0], servers[1]

    def set_network_dns(self, servers: Sequence[str]) -> None:
        """Network: the DNS servers it hands out (``()``: none, as on networks that give no DNS)."""
        self.network_dns = tuple(servers)[:2]

    def dns_server_down(self, server: str, down: bool = True) -> None:
        """Fault: the DNS server at ``server`` stops answering (``down=False``: answers again)."""
        if down:
            self.dead_dns.add(server)
        else:
            self.dead_dns.discard(server)

    def _boot_done(self) -> None:
        self._reg_timer = None
        self._booting = False
        self.urc("RDY")
        self.urc("+CPIN: READY")
        self._power_on()

    # ---------------------------------------------------------------------------------------------- PSM

    def activity(self) -> None:
        """Network or UART activity: restart the PSM inactivity timer."""
        self._touch()

    def _touch(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        st = self.state
        if not self.psm_timings.auto or st.psm_mode != 1 or self.asleep or not self._started:
            return
        if st.cfun != 1 or st.reg_stat not in (1, 5):
            return
        active = t3324_seconds(st.psm_grant_active)  # the network's grant, not the request
        if active is None:
            return
        delay = self.psm_timings.inactivity_s + active * self.psm_timings.scale
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self._sink is not None:  # in the middle of a data prompt: not idle
            self._touch()
            return
        self.enter_psm()

    def enter_psm(self) -> None:
        """Enter PSM now: ``+CPSMSTATUS: "ENTER PSM"``, then the UART goes dead until wake-up."""
        self._ensure_started()
        if self.asleep:
            return
        if self._waking:  # asleep again before the wake's registration: still registered
            if self._reg_timer is not None:
                self._reg_timer.cancel()
                self._reg_timer = None
            self._end_wake()
            self.state.reg_stat = 1
        if self.state.cpsmstatus_urc:
            self.urc('+CPSMSTATUS: "ENTER PSM"')
        self.state.psm_state = PsmState.ASLEEP
        self._sink = None
        self._inbuf.clear()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._notify("on_psm_enter", bool(self.state.retention))
        tau = t3412_seconds(self.state.psm_grant_tau)  # the network's grant, not the request
        if tau is not None and self.state.psm_mode == 1:
            self._tau_timer = asyncio.get_running_loop().call_later(
                max(tau * self.psm_timings.scale, 0.001), self.exit_psm
            )

    def exit_psm(self) -> None:
        """Wake up from PSM (the PSM_EINT pin, the TAU timer, or the UART when modelled).

        As a captured SIM7020 (profile ``sim7020``): ``+CPIN: READY``, ``+CPSMSTATUS: "EXIT PSM"``, then
        re-registration: ``+CEREG: 2`` and after ``wake_registration_delay`` ``+CEREG: 1,...`` (per the URC
        modes; UDP data sent in between is lost). Sockets survive only with ``AT+RETENTION=1``; the
        receive format (CSORCVFLAG) is back to hex. The ``note`` profile prints only ``EXIT PSM``.
        """
        if not self.asleep:
            return
        if self._tau_timer is not None:
            self._tau_timer.cancel()
            self._tau_timer = None
        st = self.state
        st.psm_state = PsmState.AWAKE
        if self.profile.wake_cpin:
            self.urc("+CPIN: READY")
        if st.cpsmstatus_urc:
            self.urc('+CPSMSTATUS: "EXIT PSM"')
        self._notify("on_psm_exit", bool(st.retention))
        if self.profile.wake_registration and st.cfun == 1 and st.reg_stat in (1, 5):
            self._waking = True
            self.net.radio_up = False
            st.reg_stat = 2
            self._registration_urcs()
            self._set_reg_timer(self.wake_registration_delay, wake=True)
            return
        self._notify("on_ready")
        self._touch()
