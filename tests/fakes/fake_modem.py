"""A scriptable fake AT peer on a real loopback TCP socket (``socket://127.0.0.1:<port>``).

Unlike the emulator (:mod:`sim7020_core.emulator`), which models a SIM7020, this peer says exactly
what a test scripts, byte for byte, so tests can make it misbehave (byte-at-a-time delivery,
garbage, URCs in the middle of a response, late or missing answers)::

    fake = FakeModem()
    url = await fake.start()
    fake.reply_to("AT+CSQ", ["+CSQ: 20,0", "OK"])
    fake.reply_to("AT+CIPSEND=5", ["SEND OK"], prompt=True, data_len=5)
    fake.emit_urc("+CSONMI: 0,4,3031")
    ...
    await fake.stop()

A reply item is a ``str`` (sent as ``\\r\\n<line>\\r\\n`` like the module does), ``bytes`` (sent as
is) or :class:`Pause` (wait before the next item). Unknown commands answer ``ERROR``; ``AT`` and
``ATE0`` answer ``OK`` unless scripted otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["FakeModem", "Pause", "ReplyItem"]


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before sending the next reply item."""

    seconds: float


ReplyItem = str | bytes | Pause
ReplySpec = Sequence[ReplyItem] | Callable[[str], Sequence[ReplyItem]]


@dataclass
class _Script:
    reply: ReplySpec
    times: int | None
    prompt: bool
    data_len: int | None
    prompt_reply: ReplySpec | None
    data_mode: bool = False


def encode_items(items: Iterable[ReplyItem]) -> list[bytes | Pause]:
    out: list[bytes | Pause] = []
    for item in items:
        if isinstance(item, str):
            out.append(b"\r\n" + item.encode() + b"\r\n")
        else:
            out.append(item)
    return out


class FakeModem:
    """Scriptable AT peer. See the module docstring.

    :param echo: echo each command line back (``AT+CSQ\\r``) like a module with ATE1
    :param chunk_size: split every write into chunks of this many bytes (1 = byte at a time)
    """

    def __init__(self, *, echo: bool = False, chunk_size: int | None = None) -> None:
        self.echo = echo
        self.chunk_size = chunk_size
        self.commands: list[str] = []
        self.data: list[bytes] = []
        self.raw_received = bytearray()
        self.in_data_mode = False
        self.data_stream = bytearray()  # bytes received in transparent data mode
        self.connections = 0
        self._scripts: dict[str, list[_Script]] = {}
        self._patterns: list[tuple[re.Pattern[str], _Script]] = []
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: asyncio.Queue[bytes | Pause | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._command_seen = asyncio.Condition()
        self._connected = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.reply_to("AT", ["OK"])
        self.reply_to("ATE0", ["OK"])

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> str:
        """Listen on 127.0.0.1 (ephemeral port); return the ``socket://`` URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._writer_loop())
        return f"socket://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close the client connection and the server; end all tasks."""
        await self.drop_connection()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drop_connection(self) -> None:
        """Close the client connection (the driver sees the link drop)."""
        writer, self._writer = self._writer, None
        self._connected.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def wait_connected(self, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- scripting ---------------------------------------------------------------------------------
    def reply_to(
        self,
        command: str | re.Pattern[str],
        reply: ReplySpec,
        *,
        times: int | None = None,
        prompt: bool = False,
        data_len: int | None = None,
        after_data: ReplySpec | None = None,
        data_mode: bool = False,
    ) -> None:
        """Script the answer to ``command`` (exact text, or a compiled regex matched in full).

        :param reply: items to send, or a function ``(command) -> items``
        :param times: use this script this many times, then fall back to the previous one
        :param prompt: send ``\\r\\n> `` first, read the data, then send ``after_data`` (or ``reply``)
        :param data_len: with ``prompt``, read exactly this many bytes; otherwise read up to Ctrl-Z
        :param data_mode: after replying, enter transparent mode: received bytes go to
            ``data_stream`` until ``+++`` (answered ``OK``)
        """
        script = _Script(reply, times, prompt, data_len, after_data, data_mode)
        if isinstance(command, re.Pattern):
            self._patterns.insert(0, (command, script))
        else:
            self._scripts.setdefault(command, []).insert(0, script)

    def never_answer(self, command: str | re.Pattern[str], *, times: int | None = None) -> None:
        """Swallow ``command`` without any answer."""
        self.reply_to(command, [], times=times)

    def emit_urc(self, line: str, payload: bytes | None = None) -> None:
        """Send an unsolicited line (``\\r\\n<line>\\r\\n``); with ``payload``, the raw bytes follow."""
        self.send_raw(b"\r\n" + line.encode() + b"\r\n" if payload is None else line.encode() + payload)

    def send_raw(self, data: bytes | Pause) -> None:
        """Queue raw bytes (or a pause) for the driver, in order with replies."""
        self._idle.clear()
        self._out.put_nowait(data)

    def send_lines(self, items: Iterable[ReplyItem]) -> None:
        for item in encode_items(items):
            self.send_raw(item)

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything queued has been written."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def wait_for_command(self, command: str, timeout: float = 2.0) -> None:
        """Wait until ``command`` has been received."""
        async with asyncio.timeout(timeout), self._command_seen:
            await self._command_seen.wait_for(lambda: command in self.commands)

    # -- serving -----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one client at a time, like a serial port
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        self.connections += 1
        self._connected.set()
        buf = bytearray()
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                self.raw_received += chunk
                buf += chunk
                await self._process(buf, reader)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
                self._connected.clear()
            writer.close()

    async def _process(self, buf: bytearray, reader: asyncio.StreamReader) -> None:
        while True:
            if self.in_data_mode:
                esc = buf.find(b"+++")
                if esc < 0:
                    keep = 2 if buf.endswith(b"++") else 1 if buf.endswith(b"+") else 0
                    self.data_stream += buf[: len(buf) - keep]
                    del buf[: len(buf) - keep]
                    return
                self.data_stream += buf[:esc]
                del buf[: esc + 3]
                self.in_data_mode = False
                self.send_lines(["OK"])
                continue
            end = buf.find(b"\r")
            if end < 0:
                return
            raw = bytes(buf[:end])
            del buf[: end + 1]
            text = raw.decode(errors="replace").strip("\n ")
            if not text:
                continue
            if self.echo:
                self.send_raw(raw + b"\r")
            async with self._command_seen:
                self.commands.append(text)
                self._command_seen.notify_all()
            script = self._find(text)
            if script is None:
                self.send_lines(["ERROR"])
                continue
            if not script.prompt:
                self.send_lines(self._items(script.reply, text))
                self.in_data_mode = script.data_mode
                continue
            self.send_raw(b"\r\n> ")
            data = await self._read_data(buf, reader, script.data_len)
            self.data.append(data)
            reply = script.prompt_reply if script.prompt_reply is not None else script.reply
            self.send_lines(self._items(reply, text))

    async def _read_data(self, buf: bytearray, reader: asyncio.StreamReader, length: int | None) -> bytes:
        while True:
            if length is not None and len(buf) >= length:
                data = bytes(buf[:length])
                del buf[:length]
                return data
            if length is None:
                end = buf.find(b"\x1a")
                if end >= 0:
                    data = bytes(buf[:end])
                    del buf[: end + 1]
                    return data
            chunk = await reader.read(4096)
            if not chunk:
                raise ConnectionError("client went away during data")
            self.raw_received += chunk
            buf += chunk

    @staticmethod
    def _items(spec: ReplySpec, command: str) -> Sequence[ReplyItem]:
        return spec(command) if callable(spec) else spec

    def _find(self, command: str) -> _Script | None:
        for key in (command, command.upper()):
            scripts = self._scripts.get(key)
            if scripts:
                return self._use(scripts)
        for pattern, script in self._patterns:
            if pattern.fullmatch(command) and (script.times is None or script.times > 0):
                if script.times is not None:
                    script.times -= 1
                return script
        return None

    @staticmethod
    def _use(scripts: list[_Script]) -> _Script | None:
        for script in scripts:
            if script.times is None:
                return script
            if script.times > 0:
                script.times -= 1
                return script
        return None

    async def _writer_loop(self) -> None:
        while True:
            item = await self._out.get()
            if isinstance(item, Pause):
                await asyncio.sleep(item.seconds)
            elif item is not None:
                await self._write(item)
            if self._out.empty():
                self._idle.set()

    async def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None:
            return
        size = self.chunk_size or len(data) or 1
        try:
            for i in range(0, len(data), size):
                writer.write(data[i : i + size])
                await writer.drain()
                if self.chunk_size:
                    await asyncio.sleep(0.0005)
        except (ConnectionError, OSError):
            pass
