"""The recorder: a transparent proxy between any client and a real modem that writes a session transcript.

::

    client (sim7020 CLI, Home Assistant, minicom, socat)
        <-> ClientPort (TCP server or pty)  <->  Recorder  <->  the modem (any pyserial URL)
                                                   |
                                                   v
                                         transcript (transcript.py)

Bytes are forwarded as they arrive, unchanged, in both directions (binary data, ``> `` prompts and
transparent data mode included): each read is written to the other side first and only then noted for
the transcript, which a background thread writes to the file (the event loop never waits for the disk).
Back-pressure is passed on: when the client stops reading, the recorder stops reading the modem, and the
other way round, so nothing is buffered without bound. Only the transcript is redacted (``redact=True``),
never the wire.

Why no existing tool: ``socat -x -v`` and ser2net's trace files log hex dumps meant for reading, and
pyserial's ``spy://`` handler sees only a pyserial client in the same process; none writes a transcript
that the replayer (and a reviewer) can read back byte for byte, nor redacts identifiers. The forwarding
itself is a few lines of asyncio on pyserial-asyncio-fast, the serial library of the rest of the project.
Like the replayer, this module never uses the driver's code (two sides of a wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import serial
import serial_asyncio_fast

from .ports import ClientPort
from .redact import Redactor
from .transcript import (
    FROM_MODEM,
    TO_MODEM,
    Direction,
    Event,
    Record,
    SessionError,
    format_header,
    format_record,
)

_LOGGER = logging.getLogger(__name__)

#: Seconds opening the modem may take (a USB adapter, a ser2net or rfc2217 server).
OPEN_TIMEOUT = 10.0
#: Seconds closing the modem's port may take.
CLOSE_TIMEOUT = 5.0

Entry = Record | Event


class TranscriptFile:
    """A transcript being written: :meth:`put` from the event loop, a thread appends to the file.

    Entries put before :meth:`open` wait in the queue and are written first.

        Every batch is flushed, so a recording that ends abruptly (power cut, ``kill -9``) keeps what was
        recorded up to the last moment.
    """

    def __init__(self, path: str | Path, metadata: dict[str, str], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.metadata = metadata
        self.overwrite = overwrite
        self.entries = 0
        self._queue: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._fh: TextIO | None = None
        self.error: OSError | None = None

    def open(self) -> None:
        """Create the file and write the header (blocking: run it in a thread)."""
        try:
            self._fh = self.path.open("w" if self.overwrite else "x", encoding="utf-8", newline="\n")
            self._fh.write(format_header(self.metadata))
            self._fh.flush()
        except FileExistsError:
            raise SessionError(
                f"{self.path} exists already (choose another name, or --force to overwrite)"
            ) from None
        except OSError as err:
            raise SessionError(f"cannot write the transcript {self.path}: {err.strerror or err}") from None
        self._thread = threading.Thread(target=self._run, name="sim7020-transcript", daemon=True)
        self._thread.start()

    def put(self, entry: Entry) -> None:
        """Queue one entry (never blocks)."""
        self.entries += 1
        self._queue.put(entry)

    def _run(self) -> None:
        fh = self._fh
        assert fh is not None
        while True:
            entry = self._queue.get()
            lines: list[str] = []
            done = entry is None
            if entry is not None:
                lines.append(format_record(entry) + "\n")
            while not done:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                else:
                    lines.append(format_record(more) + "\n")
            if lines and self.error is None:
                try:
                    fh.write("".join(lines))
                    fh.flush()
                except OSError as err:
                    self.error = err
                    _LOGGER.error("writing %s failed: %s", self.path, err)
            if done:
                return

    def close(self) -> None:
        """Write what is queued and close the file (blocking: run it in a thread)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


class _ModemProtocol(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def data_received(self, data: bytes) -> None:
        self.recorder._from_modem(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.recorder._modem_lost(exc)

    def pause_writing(self) -> None:
        self.recorder.client.pause_reading()

    def resume_writing(self) -> None:
        self.recorder.client.resume_reading()


def _open_kwargs(url: str, baudrate: int) -> dict[str, object]:
    kwargs: dict[str, object] = {"baudrate": baudrate}
    if "://" not in url:
        kwargs["exclusive"] = True  # a device path: keep ModemManager and friends out, as the driver does
    return kwargs


class Recorder:
    """Forward bytes between ``client`` and the modem at ``device``; hand every read to ``sink``.

    :param device: device path or pyserial URL (``socket://``, ``rfc2217://``) of the modem
    :param client: where the client connects (:class:`~.ports.TcpPort` or :class:`~.ports.PtyPort`)
    :param sink: called with each :class:`Record` / :class:`Event` in order (e.g. :meth:`TranscriptFile.put`)
    :param baudrate: line rate of a device path
    :param redact: replace IMEI/IMSI/ICCID/IP addresses in what ``sink`` gets (see :mod:`.redact`)
    """

    def __init__(
        self,
        device: str,
        client: ClientPort,
        sink: Callable[[Entry], None],
        *,
        baudrate: int = 115200,
        redact: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.client = client
        self.sink = sink
        self.baudrate = baudrate
        self.redactor = Redactor() if redact else None
        self.bytes_to_modem = 0
        self.bytes_from_modem = 0
        self._clock = clock
        self._t0 = clock()
        self._transport: asyncio.Transport | None = None
        self._lost: asyncio.Future[str] | None = None
        self._port_closed: asyncio.Event | None = None
        self._closing = False

    def _now(self) -> float:
        return max(0.0, self._clock() - self._t0)

    async def start(self) -> str:
        """Open the modem, then start serving the client; returns where the client connects.

        :raises SessionError: the modem cannot be opened, or the client side cannot be created
        """
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self._port_closed = asyncio.Event()
        self._t0 = self._clock()
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop,
                    lambda: _ModemProtocol(self),
                    self.device,
                    **_open_kwargs(self.device, self.baudrate),
                )
        except TimeoutError:
            raise SessionError(
                f"cannot open the modem at {self.device}: no answer within {OPEN_TIMEOUT:g} s"
            ) from None
        except (serial.SerialException, OSError, ValueError) as err:
            raise SessionError(f"cannot open the modem at {self.device}: {err}") from None
        self._transport = transport
        self._note(f"modem {self.device} opened")
        self.client.on_data = self._from_client
        self.client.on_connect = self._note
        self.client.on_disconnect = self._note
        self.client.on_backpressure = self._client_backpressure
        try:
            where = await self.client.start()
        except OSError as err:
            await self._close_modem()
            raise SessionError(f"cannot serve the client side: {err.strerror or err}") from None
        return where

    async def wait_lost(self) -> str:
        """Wait until the modem's port goes away; returns why (never returns while the port is fine)."""
        assert self._lost is not None, "start() first"
        return await asyncio.shield(self._lost)

    async def stop(self) -> None:
        """Stop forwarding, close both sides, and pass on what the redactor still holds."""
        if self._closing or self._lost is None:
            return
        self._closing = True
        await self.client.close()
        await self._close_modem()
        if self.redactor is not None:
            t = self._now()
            for direction, data in self.redactor.flush():
                self.sink(Record(t, direction, data))
        self._note("recording stopped")

    async def _close_modem(self) -> None:
        transport, self._transport = self._transport, None
        if transport is None:
            return
        transport.close()  # pyserial-asyncio-fast flushes what is queued, then closes in an executor
        if self._port_closed is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._port_closed.wait()

    # ------------------------------------------------------------------ forwarding

    def _from_modem(self, data: bytes) -> None:
        self.client.write(data)
        self.bytes_from_modem += len(data)
        self._record(FROM_MODEM, data)

    def _from_client(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        self.bytes_to_modem += len(data)
        self._record(TO_MODEM, data)

    def _client_backpressure(self, paused: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _record(self, direction: Direction, data: bytes) -> None:
        t = self._now()
        if self.redactor is None:
            self.sink(Record(t, direction, data))
            return
        for d, piece in self.redactor.feed(direction, data):
            self.sink(Record(t, d, piece))

    def _note(self, text: str) -> None:
        self.sink(Event(self._now(), text))

    def _modem_lost(self, exc: Exception | None) -> None:
        if self._port_closed is not None:
            self._port_closed.set()
        if self._closing:
            return
        reason = str(exc) if exc is not None else "the port was closed"
        self._note(f"modem lost: {reason}")
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
