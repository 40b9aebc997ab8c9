"""The serial link: asyncio serial I/O over pyserial-asyncio-fast, for any pyserial URL.

A :class:`SerialLink` is a byte pipe to the module. It knows nothing about AT commands: the
engine (:mod:`sim7020_core.at.engine`) attaches a receiver to it with :meth:`SerialLink.set_receiver`.

URLs: a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, opened exclusively),
``socket://host:port`` (ser2net, the emulator's TCP server) or ``rfc2217://host:port``.

pyserial-asyncio-fast opens, configures and locks every port (in an executor, so the event loop never blocks)
and carries the bytes of network URLs. For a POSIX tty (a device path) the link uses a subclass of its
transport, :class:`FdSerialTransport`, that reads and writes the file descriptor directly: pyserial's
``read()`` costs a ``select()`` call and a timeout object on every wakeup, about 8 % of an AT round trip
(``bench/run at``).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

import serial
import serial_asyncio_fast

from . import const
from .exceptions import PortBusyError, TransportError

_LOGGER = logging.getLogger(__name__)

DataCallback = Callable[[bytes], None]
LostCallback = Callable[[Exception | None], None]

_BUSY_MARKERS = ("exclusively lock", "resource busy", "device or resource busy", "errno 16")


def _is_busy(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _BUSY_MARKERS)


def url_scheme(url: str) -> str:
    """Return the pyserial URL scheme of ``url`` ("" for a plain device path)."""
    if "://" not in url:
        return ""
    return urllib.parse.urlparse(url).scheme.lower()


class FdSerialTransport(serial_asyncio_fast.SerialTransport):
    """pyserial-asyncio-fast's transport for a POSIX tty, with reads and writes on the fd itself.

    Everything else (flow control, buffering, closing in an executor) is the base class's. Errors are
    reported as the base class reports them: a failed read closes the transport with a
    :class:`serial.SerialException`, a failed write is a fatal error.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, serial_instance: serial.Serial
    ) -> None:
        super().__init__(loop, protocol, serial_instance)
        self._fd: int = serial_instance.fileno()

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, self._max_read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc=serial.SerialException(f"read failed: {exc}"))
            return
        if data:
            self._protocol.data_received(data)
        else:  # readable but empty: the device is gone (pyserial says the same)
            self._close(
                exc=serial.SerialException(
                    "device reports readiness to read but returned no data (device disconnected?)"
                )
            )

    def _write_data(self, data: bytes | bytearray | memoryview) -> None:
        try:
            n = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._fatal_error(
                serial.SerialException(f"write failed: {exc}"), "Fatal write error on serial transport"
            )
            return
        if n == len(data):
            if self._closing:
                self._close()
            return
        self._write_buffer.append(data[n:])  # the rest when the fd is writable again
        self._maybe_pause_protocol()
        self._ensure_writer()


def _uses_fd_transport(serial_instance: object) -> bool:
    # only pyserial's own POSIX class: URL handlers (loop://, spy://, rfc2217://) keep the stock transport
    return os.name == "posix" and type(serial_instance) is serial.Serial


async def _create_connection(
    loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.Protocol], url: str, **kwargs: Any
) -> asyncio.Transport:
    if url_scheme(url) != "":
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop, protocol_factory, url, **kwargs
        )
        return transport
    opener = functools.partial(serial.serial_for_url, url, **kwargs)
    serial_instance = await loop.run_in_executor(None, opener)
    if not _uses_fd_transport(serial_instance):
        transport, _ = await serial_asyncio_fast.connection_for_serial(
            loop, protocol_factory, serial_instance
        )
        return transport
    return FdSerialTransport(loop, protocol_factory(), serial_instance)


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, link: SerialLink) -> None:
        self._link = link
        # received bytes go straight to the link (one call less per read than the method below)
        self.data_received = link._data_received  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._link._connection_made()

    def data_received(self, data: bytes) -> None:
        self._link._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._connection_lost(exc)


class SerialLink:
    """An open serial link to the module.

    Open one with :meth:`open`. Received bytes go to the receiver set with :meth:`set_receiver`
    (bytes that arrive before a receiver is set are kept and handed over when it is set).
    ``on_connection_lost`` callbacks run once when the link closes for any reason other than
    :meth:`close`.
    """

    def __init__(self, url: str, baudrate: int) -> None:
        self.url = url
        self.baudrate = baudrate
        self._transport: asyncio.Transport | None = None
        self._on_data: DataCallback | None = None
        self._on_lost: LostCallback | None = None
        self._early: list[bytes] = []
        self._closing = False
        self._closed = asyncio.get_running_loop().create_future()
        self._lost_callbacks: list[LostCallback] = []
        self.bytes_received = 0
        self.bytes_sent = 0

    # -- opening --------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baudrate: int | None = None,
        exclusive: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109
        **serial_kwargs: Any,
    ) -> SerialLink:
        """Open ``url`` and return the link.

        :param url: device path or pyserial URL (``socket://``, ``rfc2217://`` …)
        :param baudrate: line rate (ignored by ``socket://``); default :data:`const.DEFAULT_BAUDRATE`
        :param exclusive: lock a device path so that no other process (ModemManager) can use it
        :param timeout: bound on opening; default :data:`const.LINK_OPEN_TIMEOUT`
        :raises PortBusyError: another process holds the port
        :raises TransportError: the port cannot be opened (missing, refused, timed out)
        """
        rate = const.DEFAULT_BAUDRATE if baudrate is None else baudrate
        limit = const.LINK_OPEN_TIMEOUT if timeout is None else timeout
        link = cls(url, rate)
        kwargs: dict[str, Any] = dict(serial_kwargs)
        if url_scheme(url) == "" and exclusive:
            kwargs.setdefault("exclusive", True)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limit):
                transport = await _create_connection(
                    loop, lambda: _LinkProtocol(link), url, baudrate=rate, **kwargs
                )
        except TimeoutError as exc:
            raise TransportError(f"opening {url} timed out after {limit:g} s") from exc
        except (serial.SerialException, OSError, ValueError) as exc:
            if _is_busy(exc):
                raise PortBusyError(f"{url} is busy (held by another process?): {exc}") from exc
            raise TransportError(f"cannot open {url}: {exc}") from exc
        link._transport = transport
        if hasattr(transport, "_max_read_size"):
            # pyserial-asyncio-fast reads 1 KiB per wakeup; a burst of URCs wants bigger reads
            transport._max_read_size = const.LINK_READ_SIZE
        _LOGGER.debug("opened %s at %d baud", url, rate)
        return link

    # -- properties -----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """True while the link can carry bytes."""
        return self._transport is not None and not self._closing and not self._closed.done()

    @property
    def is_socket(self) -> bool:
        """True for network URLs (``socket://``, ``rfc2217://``) where the line rate is irrelevant."""
        return url_scheme(self.url) in ("socket", "rfc2217")

    # -- receiving --------------------------------------------------------------------------
    def set_receiver(self, on_data: DataCallback | None, on_lost: LostCallback | None = None) -> None:
        """Route received bytes to ``on_data`` (None detaches); ``on_lost`` is told when the link drops."""
        self._on_data = on_data
        self._on_lost = on_lost
        if on_data is not None and self._early:
            early, self._early = self._early, []
            for chunk in early:
                on_data(chunk)

    def add_lost_callback(self, callback: LostCallback) -> Callable[[], None]:
        """Call ``callback(exc)`` when the link drops (not on :meth:`close`); returns a remover."""
        self._lost_callbacks.append(callback)

        def remove() -> None:
            if callback in self._lost_callbacks:
                self._lost_callbacks.remove(callback)

        return remove

    def _connection_made(self) -> None:
        pass

    def _data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self._on_data is None:
            self._early.append(data)
        else:
            self._on_data(data)

    def _connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        if self._closing:
            return
        _LOGGER.debug("link %s lost: %r", self.url, exc)
        callbacks = list(self._lost_callbacks)
        if self._on_lost is not None:
            callbacks.insert(0, self._on_lost)
        for callback in callbacks:
            try:
                callback(exc)
            except Exception:
                _LOGGER.exception("connection-lost callback %r failed", callback)

    # -- sending -----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (never blocks).

        :raises TransportError: the link is closed
        """
        if not self.is_open or self._transport is None:
            raise TransportError(f"link {self.url} is closed")
        self.bytes_sent += len(data)
        self._transport.write(data)

    async def set_baudrate(self, baudrate: int) -> None:
        """Change the local line rate (after AT+IPR); a no-op for network URLs."""
        self.baudrate = baudrate
        if self.is_socket or self._transport is None:
            return
        port = self._transport.get_extra_info("serial")
        if port is not None:
            port.baudrate = baudrate

    # -- closing -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the link (idempotent, bounded by :data:`const.LINK_CLOSE_TIMEOUT`)."""
        if self._transport is None or self._closing:
            return
        self._closing = True
        self._transport.close()
        try:
            async with asyncio.timeout(const.LINK_CLOSE_TIMEOUT):
                await asyncio.shield(self._closed)
        except TimeoutError:
            _LOGGER.warning("closing %s did not finish within %g s", self.url, const.LINK_CLOSE_TIMEOUT)
            self._transport.abort()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SerialLink {self.url} {self.baudrate} {state}>"
