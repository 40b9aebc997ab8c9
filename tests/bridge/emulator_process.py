"""An emulated SIM7020 in its own process, its faults driven over stdin (the chaos test's module).

A real module outlives the bridge that drives it: killing the bridge must leave the module (and the sockets
it holds) as they were. So the chaos test runs the emulator here, not in the bridge's process::

    python -m tests.bridge.emulator_process     # prints the TCP port of its AT interface, then reads lines

Commands, one per line, each answered with one line (``ok …`` or ``error: …``):

* ``reboot``: :meth:`Emulator.reboot` (docs/emulator.md, *Fault injection*);
* ``stall SECONDS``: :meth:`Emulator.stall` for that long;
* ``sockets``: ``ok N``, the native sockets the module holds now.

EOF or SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sim7020_core.emulator import Emulator


def answer(emu: Emulator, line: str) -> str:
    """Run one command line; the answer to print."""
    command, _, arg = line.strip().partition(" ")
    try:
        if command == "reboot":
            emu.reboot()
            return "ok"
        if command == "stall":
            emu.stall(float(arg))
            return "ok"
        if command == "sockets":
            return f"ok {len(emu.command_sets['native'].sockets)}"
    except (ValueError, RuntimeError) as err:
        return f"error: {command}: {err}"
    return f"error: unknown command {command!r} (reboot, stall SECONDS, sockets)"


async def main() -> int:
    emu = Emulator(registration_delay=0.2)
    _host, port = await emu.start_tcp("127.0.0.1", 0)
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    pending = bytearray()

    def on_stdin() -> None:
        chunk = os.read(0, 4096)
        if not chunk:
            done.set()
            return
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            print(answer(emu, line.decode()), flush=True)

    loop.add_reader(0, on_stdin)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    try:
        await done.wait()
    finally:
        loop.remove_reader(0)
        await emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
