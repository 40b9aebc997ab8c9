"""A minimal, fast AT responder on a pseudo-terminal, run in its own process for the benchmarks.

It is not the emulator: it answers only what the benchmarks send, as fast as os.read/os.write allow, so the
client side is what gets measured.

- ``AT+CSQ`` → ``\\r\\n+CSQ: 20,0\\r\\n\\r\\nOK\\r\\n``
- ``AT+BLAST=<n>,<size>`` → ``\\r\\nOK\\r\\n`` then n URCs ``+CSONMI: 0,<2*size>,<hex>`` (hex mode, as the
  module sends them)
- ``AT`` → ``\\r\\nOK\\r\\n`` (anything else → ``\\r\\nERROR\\r\\n``)

Usage: python bench/responder.py   (prints the pty path on stdout, then serves until stdin closes)
"""

from __future__ import annotations

import os
import select
import sys
import termios
import tty

CSQ = b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n"
OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def urc_block(count: int, size: int) -> bytes:
    payload = bytes(range(256)) * (size // 256 + 1)
    hexdata = payload[:size].hex().upper().encode()
    line = b"+CSONMI: 0," + str(len(hexdata)).encode() + b"," + hexdata + b"\r\n"
    return line * count


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view[:65536])
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def main() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    print(os.ttyname(slave), flush=True)
    buf = b""
    while True:
        ready, _, _ = select.select([master, sys.stdin], [], [])
        if sys.stdin in ready and not sys.stdin.readline():
            return
        if master not in ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:
            continue
        buf += chunk
        out = []
        while True:
            end = buf.find(b"\r")
            if end < 0:
                break
            cmd, buf = buf[:end].strip(), buf[end + 1 :]
            if cmd == b"AT+CSQ":
                out.append(CSQ)
            elif cmd.startswith(b"AT+BLAST="):
                count, size = (int(x) for x in cmd[9:].split(b","))
                out.append(OK)
                out.append(urc_block(count, size))
            elif cmd in (b"AT", b"ATE0", b"AT+CMEE=1"):
                out.append(OK)
            elif cmd:
                out.append(ERROR)
        if out:
            write_all(master, b"".join(out))


if __name__ == "__main__":
    main()
