"""Benchmark of the MQTT bridge (issues 5 and 14): MQTT -> modem -> UDP peer -> back.

Two modes, each measured on a chain of real processes on loopback:

- a mosquitto broker (Debian's ``/usr/sbin/mosquitto``, on a free 127.0.0.1 port, ``persistence false``,
  ``set_tcp_nodelay true``);
- a UDP echo peer (its own process) that sends every datagram back to where it came from;
- the load generator (this process): a paho publisher (QoS 1) stamps each message with its route, a sequence
  number and the send time (``time.perf_counter_ns``), a paho subscriber (QoS 1) on the downlink topics takes
  the round trip when the echo comes back, and checks the payload arrived intact;
- the system under test, in its own process so its CPU seconds, wake-ups and peak RSS are its own:

  * ``relay``: the **baseline**: a tiny paho relay (``--relay``, below) that sends each uplink message as a
    UDP datagram to the echo peer and publishes the answer on the downlink topic (QoS 1, ``TCP_NODELAY``,
    no modem, no durability);
  * ``bridge``: ``python -m sim7020_core bridge -c bridge.yaml``, one ``native`` UDP route per modem to the
    echo peer, QoS 1 both ways, its durable sqlite queue in a temporary ``state_dir``;
  * ``broker`` (stress mode only): no relay at all, the subscriber listens on the uplink topic itself
    (mosquitto's pub->sub round trip, the floor).

**Gateway mode** (the default; issue 14): what a gateway with several modems on USB does. Every modem is an
emulator in its own process (``--emulator``, below: real modems are outside the host), paced at 115200 baud,
and the bridge reaches it over TCP (``device: socket://...``). The system under test is pinned to one CPU
(``--cpu``, default 0) and everything else (broker, echo peer, emulators, load generator) to the others, so
"the bridge on one core" is measured as such. Scenarios: 1, 5 and 20 modems; phases *latency* (one message in
flight per route) and *throughput* (``WINDOW`` in flight per route); the bridge's rate is printed as a ratio
of the aggregate line limit (:func:`line_limit`), its CPU per message as a ratio of the relay's, the relay
being offered the same load (at most the line limit of the scenario). After the largest scenario the bridge
is left alone with its modems idle (awake: status polls and watchdog running) and then a second bridge with
every modem in PSM is measured idle: CPU % of one core and wake-ups per second (voluntary context switches of
all its threads, from ``/proc/<pid>/task/*/status``).

**Stress mode** (``--stress``; issue 5): the bridge's own ``device: emulator`` modems, unpaced, in the
bridge's process (their CPU is counted in the bridge's), 1 and 20 modems, against the broker floor and the
relay; it shows what the host can move when the serial lines are not the limit.

The systems take turns for ``--repeat`` rounds and each phase keeps its best round, as background load on a
shared machine only slows a round down. Every wait is bounded: messages that never come back are counted and
reported, and the run goes on (exit status 1 when a system failed). ``--profile DIR`` runs py-spy on the
bridge during its throughput phases and idle windows (flame graph SVG, collapsed stacks, a summary by
component: ``bench/profile_summary.py``).

Run: ``bench/run bridge`` (or ``python bench/bridge_bench.py [--quick] [--stress] [--json]``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Payload size on the wire (the stamp, padded with dots).
PAYLOAD = 64
#: Messages in flight per route in the throughput phase.
WINDOW = 16
#: The serial line of every emulated modem in gateway mode.
BAUD = 115200
#: Seconds of publishing per phase: (full run, --quick run).
LATENCY_SECONDS = (2.0, 1.0)
THROUGHPUT_SECONDS = (4.0, 2.0)
GATEWAY_LATENCY_SECONDS = (3.0, 1.5)
GATEWAY_THROUGHPUT_SECONDS = (8.0, 3.0)
#: Idle windows (gateway mode); the awake modems' watchdog probes every 30 s and status polls every 60 s.
IDLE_SECONDS = (30.0, 8.0)
#: Quiet time before an idle window (the last round trips and deletes settle).
IDLE_SETTLE = 2.0
#: Modem counts of the scenarios.
SCENARIOS = (1, 20)
GATEWAY_SCENARIOS = (1, 5, 20)
#: Systems under test, in the order measured (the relay is the baseline of the ratios).
SYSTEMS = ("broker", "relay", "bridge")
GATEWAY_SYSTEMS = ("floor", "relay", "bridge")
PHASES = ("latency", "throughput")
#: PSM timers of the emulated modems of the PSM idle scenario, as a fleet would have them in NV memory:
#: T3324 (active time) 2 x 2 s = 4 s, T3412 (periodic TAU) 1 x 1 h: asleep 4.5 s after the last command.
PSM_T3324 = "00000010"
PSM_T3412 = "00100001"

#: Bounds on every wait.
BROKER_START_TIMEOUT = 10.0
PROCESS_START_TIMEOUT = 20.0
#: The system under test must answer a probe on every route within this (the bridge opens 20 modems).
READY_TIMEOUT = 90.0
PROBE_INTERVAL = 0.25
PROBE_SETTLE = 0.5
#: After the last publish of a phase, wait this long for the outstanding round trips.
DRAIN_TIMEOUT = 15.0
MQTT_CONNECT_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0
WAIT_SLICE = 0.1
#: Emulated modems in PSM must all be asleep within this.
PSM_SLEEP_TIMEOUT = 60.0
PROFILE_RATE = 100  # py-spy samples per second


# --- the line limit -----------------------------------------------------------------------------------------


def native_udp_wire(payload: int, socket_id: int = 0) -> tuple[int, int, int]:
    """Line bytes one ``payload``-byte datagram puts on the serial line with the ``native`` transport
    (hex mode, echo off, as the driver sets it up): ``(command, its final result, the +CSONMI back)``.

    - to the module: ``AT+CSOSEND=<id>,<hexlen>,"<hex>"\\r`` (two hex characters per byte);
    - from the module: ``\\r\\nOK\\r\\n`` (the command's final result), and for the echoed datagram
      ``\\r\\n+CSONMI: <id>,<hexlen>,<hex>\\r\\n``.
    """
    hexlen = 2 * payload
    command = len(f'AT+CSOSEND={socket_id},{hexlen},"') + hexlen + len('"\r')
    final = len("\r\nOK\r\n")
    urc = len(f"\r\n+CSONMI: {socket_id},{hexlen},") + hexlen + len("\r\n")
    return command, final, urc


def line_limit(payload: int = PAYLOAD, baud: int = BAUD) -> float:
    """Round trips per second one modem's line can carry with the native transport (8N1: 10 bits a byte).

    The module takes one command at a time, so the line towards it is busy for the command and then idle
    until the final result is back: one message per ``command + final`` byte times. The line from the
    module carries ``final + urc`` per message in parallel (the +CSONMI of one message crosses while the
    next command goes out). The limit is the slower of the two.
    """
    command, final, urc = native_udp_wire(payload)
    bytes_per_second = baud / 10
    return min(bytes_per_second / (command + final), bytes_per_second / (final + urc))


# --- small helpers ------------------------------------------------------------------------------------------


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (all its threads); None when there is none (any more)."""
    import psutil  # type: ignore[import-untyped,unused-ignore]

    if pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def total_cpu(pids: list[int]) -> float:
    return sum(process_cpu(pid) or 0.0 for pid in pids)


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size of a process (Linux VmHWM, elsewhere the current RSS); None if it is gone."""
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        rss = float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return None
    return rss or None


def thread_switches(pid: int) -> dict[int, int]:
    """Voluntary context switches per thread (Linux): each is the thread going to sleep, so the sum of
    their increase over a window is the number of wake-ups."""
    out: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        out[int(tid)] = int(line.split()[1])
    return out


def thread_stats(pid: int) -> dict[int, tuple[int, int, int, int]]:
    """Per thread (Linux): (ns on the CPU, ns runnable waiting for it, times scheduled in, voluntary context
    switches), from ``/proc/<pid>/task/<tid>/schedstat`` and ``status``."""
    out: dict[int, tuple[int, int, int, int]] = {}
    switches = thread_switches(pid)
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                run, wait, slices = (
                    int(v) for v in Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                )
                out[int(tid)] = (run, wait, slices, switches.get(int(tid), 0))
    return out


def thread_group(name: str) -> str:
    """The role of a bridge thread, from its Python name."""
    if name.startswith("paho-mqtt-client"):
        return "paho network threads (one per modem)"
    if name == "MainThread":
        return "event loop (main thread)"
    if name.startswith("sim7020-queue"):
        return "sqlite queue thread"
    if name.startswith("asyncio_"):
        return "asyncio default executor"
    return name or "?"


def cpu_busy(cpu: int | None) -> tuple[float, float] | None:
    """(busy, total) jiffies of one CPU from /proc/stat (None when unknown)."""
    if cpu is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]  # idle + iowait
                return float(sum(values) - idle), float(sum(values))
    return None


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"  (pid {proc.pid} ignored SIGTERM for {timeout:g} s: killed)", file=sys.stderr)
            proc.kill()
            proc.wait(timeout)


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of a child's stdout, bounded."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise RuntimeError(f"pid {proc.pid} said nothing within {timeout:g} s")
        return proc.stdout.readline().strip()
    finally:
        sel.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pin(cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


# --- the UDP echo peer (--echo) -----------------------------------------------------------------------------


def run_echo() -> int:
    """Answer each datagram with itself; print the port; end when stdin closes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    print(sock.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is not sock:
                if not sys.stdin.buffer.readline():
                    return 0
                continue
            data, addr = sock.recvfrom(65535)
            sock.sendto(data, addr)


# --- an emulated modem in its own process (--emulator) ------------------------------------------------------


def run_emulator(spec: dict[str, Any]) -> int:
    """One emulated SIM7020 on a free TCP port (printed), paced at ``spec["baud"]``; counts the line bytes.

    stdin: ``stats`` prints ``{"rx": bytes from the host, "tx": bytes to it, "asleep": bool}``; EOF stops.
    With ``spec["psm"]`` the module's NV memory holds ``AT+CPSMS=1`` with short timers (:data:`PSM_T3324`,
    :data:`PSM_T3412`): it falls asleep by itself once idle, as a PSM fleet does.
    """
    from sim7020_core.emulator import Emulator

    async def main() -> int:
        emu = Emulator(baudrate=spec.get("baud") or None)
        counts = {"rx": 0, "tx": 0}

        def count(direction: str, data: bytes) -> None:
            counts[direction] += len(data)

        emu.add_transcript_listener(count)
        if spec.get("psm"):
            emu.state.psm_mode = 1
            emu.state.psm_active = PSM_T3324
            emu.state.psm_tau = PSM_T3412
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
                if line.strip() == b"stats":
                    print(json.dumps({**counts, "asleep": emu.asleep}), flush=True)

        loop.add_reader(0, on_stdin)
        loop.add_signal_handler(signal.SIGTERM, done.set)
        await done.wait()
        loop.remove_reader(0)
        await emu.stop()
        return 0

    return asyncio.run(main())


class EmulatorFleet:
    """``count`` emulator processes (``--emulator``), each on its own TCP port."""

    def __init__(self, count: int, *, baud: int, psm: bool = False) -> None:
        spec = json.dumps({"baud": baud, "psm": psm})
        self.procs: list[subprocess.Popen[str]] = []
        self.ports: list[int] = []
        try:
            for _ in range(count):
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--emulator", spec],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        cwd=ROOT,
                    )
                )
            self.ports = [int(read_line(proc, PROCESS_START_TIMEOUT)) for proc in self.procs]
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stats(self) -> list[dict[str, Any]]:
        out = []
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("stats\n")
            proc.stdin.flush()
        for proc in self.procs:
            out.append(json.loads(read_line(proc, PROCESS_START_TIMEOUT)))
        return out

    def line_bytes(self) -> tuple[int, int]:
        """Bytes (to the modules, from the modules) so far, all modems together."""
        stats = self.stats()
        return sum(s["rx"] for s in stats), sum(s["tx"] for s in stats)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                stop_process(proc)


# --- the line floor (--floor) ------------------------------------------------------------------------------


def _at(sock: socket.socket, command: str, timeout: float = 5.0) -> list[bytes]:
    """Send one AT command on a blocking socket; return the lines up to the final result."""
    sock.sendall(command.encode() + b"\r")
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in buf.split(b"\r\n") if line]
        if lines and (lines[-1] in (b"OK", b"ERROR") or lines[-1].startswith(b"+CME ERROR")):
            return lines
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer to {command!r}: {buf!r}")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"the emulator closed the connection after {command!r}")
        buf += chunk


def run_floor(spec: dict[str, Any]) -> int:
    """The fastest client the paced lines allow: per modem, a raw socket doing the native transport's
    exchange (``AT+CSOSEND`` a datagram, wait for ``OK``, send the next; count the ``+CSONMI`` echoes),
    no MQTT, no queue, no parsing beyond finding lines. Prints its figures as JSON."""
    seconds = float(spec["seconds"])
    data = ("".join(f"{b:02X}" for b in (b"." * PAYLOAD))).encode()
    command = b'AT+CSOSEND=0,%d,"%s"\r' % (len(data), data)
    socks = []
    for port in spec["ports"]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _at(sock, "ATE0")
        deadline = time.monotonic() + 10
        while _at(sock, "AT+CSOC=1,2,1")[-1] != b"OK":  # not registered yet
            if time.monotonic() > deadline:
                raise RuntimeError("AT+CSOC failed for 10 s")
            time.sleep(0.1)
        _at(sock, f'AT+CSOCON=0,{spec["echo_port"]},"127.0.0.1"')
        sock.setblocking(False)
        socks.append(sock)
    sel = selectors.DefaultSelector()
    state: dict[socket.socket, dict[str, Any]] = {}
    for sock in socks:
        state[sock] = {"buf": b"", "sent": [time.perf_counter_ns()]}
        sel.register(sock, selectors.EVENT_READ)
        sock.send(command)
    oks = received = 0
    latencies: list[float] = []
    t0 = time.perf_counter_ns()
    end = time.monotonic() + seconds
    last = t0
    while time.monotonic() < end:
        for key, _ in sel.select(WAIT_SLICE):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            st = state[sock]
            st["buf"] += sock.recv(65536)
            *lines, st["buf"] = st["buf"].split(b"\r\n")
            for line in lines:
                if line == b"OK":
                    oks += 1
                    st["sent"].append(time.perf_counter_ns())
                    sock.send(command)
                elif line.startswith(b"+CSONMI"):
                    last = time.perf_counter_ns()
                    received += 1
                    latencies.append((last - st["sent"].pop(0)) / 1e6)
    latencies.sort()
    print(
        json.dumps(
            {
                "sent": oks,
                "received": received,
                "seconds": (last - t0) / 1e9,
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
            }
        ),
        flush=True,
    )
    for sock in socks:
        sock.close()
    return 0


# --- the baseline relay (--relay) ---------------------------------------------------------------------------


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """Nagle off: a PUBACK then a PUBLISH on one connection would wait for a delayed ACK (40 ms)."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def run_relay(spec: dict[str, Any]) -> int:
    """MQTT uplink -> UDP datagram to the echo peer -> MQTT downlink, one UDP socket per route, QoS 1."""
    routes: list[dict[str, str]] = spec["routes"]
    peer = ("127.0.0.1", int(spec["echo_port"]))
    socks: dict[str, socket.socket] = {}
    by_sock: dict[socket.socket, str] = {}
    sel = selectors.DefaultSelector()
    for route in routes:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        socks[route["up"]] = sock
        by_sock[sock] = route["down"]
        sel.register(sock, selectors.EVENT_READ)
    connected = threading.Event()

    def on_connect(client: mqtt.Client, *_a: Any) -> None:
        client.subscribe([(route["up"], 1) for route in routes])
        connected.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        socks[msg.topic].sendto(msg.payload, peer)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=spec["client_id"])
    client.max_inflight_messages_set(1000)
    client.on_socket_open = _nodelay
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", int(spec["broker_port"]))
    client.loop_start()
    if not connected.wait(MQTT_CONNECT_TIMEOUT):
        print("relay: no connection to the broker", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    while not stop.is_set():
        for key, _ in sel.select(WAIT_SLICE):
            udp = key.fileobj
            assert isinstance(udp, socket.socket)
            client.publish(by_sock[udp], udp.recv(65535), qos=1)
    client.disconnect()
    client.loop_stop()
    return 0


# --- systems under test -------------------------------------------------------------------------------------


@dataclass
class Route:
    up: str
    down: str


@dataclass
class System:
    """A running system under test: its routes and (except for the broker floor) its process."""

    name: str
    routes: list[Route]
    proc: subprocess.Popen[str] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    log: Any = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            stop_process(self.proc)
        if self.log is not None:
            self.log.close()

    def cleanup(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()

    def log_text(self) -> list[str]:
        """What the process wrote to stdout/stderr (the bridge logs at WARNING and above)."""
        if self.tmp is None:
            return []
        path = Path(self.tmp.name) / "system.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text()[-lines:])


def bridge_yaml(
    modems: int,
    broker_port: int,
    echo_port: int,
    state_dir: Path,
    prefix: str,
    devices: list[str] | None = None,
) -> str:
    lines = [
        "mqtt:",
        "  host: 127.0.0.1",
        f"  port: {broker_port}",
        f"  client_id: {prefix}",
        "  discovery: false",
        f"state_dir: {state_dir}",
        "modems:",
    ]
    for i in range(modems):
        lines += [f"  - id: m{i}", f"    device: {devices[i] if devices else 'emulator'}"]
    lines.append("routes:")
    for i in range(modems):
        lines += [
            f"  - name: r{i}",
            f"    modem: m{i}",
            "    transport: native",
            "    protocol: udp",
            "    host: 127.0.0.1",
            f"    port: {echo_port}",
            f"    uplink: {prefix}/r{i}/up",
            f"    downlink: {prefix}/r{i}/down",
            "    encoding: raw",
            "    qos: 1",
        ]
    return "\n".join(lines) + "\n"


def start_system(
    kind: str,
    modems: int,
    broker_port: int,
    echo_port: int,
    *,
    devices: list[str] | None = None,
    cpus: set[int] | None = None,
    tag: str = "",
) -> System:
    """Start a system under test; ``devices`` are the modems' URLs (default: the bridge's built-in
    emulators); ``cpus`` pins its process (and every thread it starts)."""
    prefix = f"bench-{kind}{modems}{tag}-{os.getpid()}"
    routes = [Route(f"{prefix}/r{i}/up", f"{prefix}/r{i}/down") for i in range(modems)]
    if kind == "broker":
        return System(kind, [Route(r.up, r.up) for r in routes])
    tmp = tempfile.TemporaryDirectory(prefix="sim7020-bench-")
    log = (Path(tmp.name) / "system.log").open("w")
    if kind == "relay":
        spec = {
            "routes": [{"up": r.up, "down": r.down} for r in routes],
            "echo_port": echo_port,
            "broker_port": broker_port,
            "client_id": prefix,
        }
        argv = [sys.executable, __file__, "--relay", json.dumps(spec)]
    else:
        config = Path(tmp.name) / "bridge.yaml"
        config.write_text(
            bridge_yaml(modems, broker_port, echo_port, Path(tmp.name) / "state", prefix, devices)
        )
        argv = [sys.executable, "-m", "sim7020_core", "bridge", "-c", str(config), "--log-level", "WARNING"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,  # noqa: PLW1509 - sched_setaffinity only
    )
    return System(kind, routes, proc=proc, tmp=tmp, log=log)


# --- the load generator -------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    sent: int = 0
    received: int = 0
    lost: int = 0
    corrupt: int = 0
    duplicates: int = 0
    late: int = 0  # lost in an earlier phase, came back during this one
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float | None = None
    side_cpu_seconds: float | None = None  # everything but the system under test (gateway mode)
    core_busy: float | None = None  # fraction of the system's CPU busy (all processes)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        cpu = self.cpu_seconds
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "corrupt": self.corrupt,
            "duplicates": self.duplicates,
            "late": self.late,
            "seconds": self.seconds,
            "rate": self.received / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "cpu_per_1000": cpu / self.received * 1000 if cpu is not None and self.received else None,
            "cpu_share": cpu / self.seconds if cpu is not None and self.seconds else None,
            "side_cpu_share": (
                self.side_cpu_seconds / self.seconds
                if self.side_cpu_seconds is not None and self.seconds
                else None
            ),
            "core_busy": self.core_busy,
        }


def percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def stamp(route: int, seq: int) -> bytes:
    head = f"{route}:{seq}:{time.perf_counter_ns()}:".encode()
    return head + b"." * (PAYLOAD - len(head))


class LoadGenerator:
    """A paho publisher and a paho subscriber (QoS 1) with a window of round trips in flight per route."""

    def __init__(self, broker_port: int) -> None:
        self.port = broker_port
        self.cond = threading.Condition()
        self.routes: list[Route] = []
        self.inflight: list[int] = []
        self.outstanding: dict[tuple[int, int], None] = {}
        self.expired: set[tuple[int, int]] = set()  # given up on at the end of a phase
        self.seqs: list[int] = []  # per route; never reused for one system, so a late echo is recognised
        self.result = PhaseResult()
        self.probed: set[str] = set()  # downlink topics a probe came back on
        self.last_reply = 0
        tag = f"bench-load-{os.getpid()}"
        self.pub = self._client(f"{tag}-pub")
        self.sub = self._client(f"{tag}-sub")
        self.sub.on_message = self._on_message

    def _client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.max_inflight_messages_set(1000)
        connected = threading.Event()
        client.on_connect = lambda *_a: connected.set()
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        if not connected.wait(MQTT_CONNECT_TIMEOUT):
            raise RuntimeError(f"{client_id}: no connection to the broker")
        return client

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()

    def use(self, routes: list[Route]) -> None:
        """Subscribe to the downlink topics of a new system (QoS 1)."""
        for old in self.routes:
            self.sub.unsubscribe(old.down)
        with self.cond:
            self.routes = routes
            self.probed.clear()
            self.seqs = [0] * len(routes)
            self.expired.clear()
        done = threading.Event()
        self.sub.on_subscribe = lambda *_a: done.set()
        self.sub.subscribe([(r.down, 1) for r in routes])
        if not done.wait(MQTT_CONNECT_TIMEOUT):
            raise RuntimeError("the broker did not acknowledge the subscription")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter_ns()
        payload = msg.payload
        if payload.startswith(b"probe:"):
            with self.cond:
                self.probed.add(msg.topic)
                self.cond.notify_all()
            return
        try:
            route_s, seq_s, sent_s, pad = payload.decode().split(":", 3)
            key = (int(route_s), int(seq_s))
            sent = int(sent_s)
        except ValueError:
            with self.cond:
                self.result.corrupt += 1
            return
        with self.cond:
            if key in self.expired:
                self.expired.discard(key)
                self.result.late += 1
                return
            if key not in self.outstanding:
                self.result.duplicates += 1
                return
            if len(payload) != PAYLOAD or pad.strip(".") or self.routes[key[0]].down != msg.topic:
                self.result.corrupt += 1
            del self.outstanding[key]
            self.inflight[key[0]] -= 1
            self.result.received += 1
            self.result.latencies_ms.append((now - sent) / 1e6)
            self.last_reply = now
            self.cond.notify_all()

    def wait_ready(self, timeout: float, proc: subprocess.Popen[str] | None) -> float:
        """Publish a probe on every route until each came back; return the seconds it took."""
        start = time.monotonic()
        pending = set(range(len(self.routes)))
        ready = start
        attempt = 0
        while pending:
            if time.monotonic() - start > timeout:
                raise RuntimeError(
                    f"{len(pending)} of {len(self.routes)} routes did not answer in {timeout:g} s"
                )
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} before answering")
            attempt += 1
            for i in sorted(pending):
                self.pub.publish(self.routes[i].up, f"probe:{i}:{attempt}", qos=1)
            deadline = time.monotonic() + PROBE_INTERVAL
            with self.cond:
                while pending and time.monotonic() < deadline:
                    self.cond.wait(WAIT_SLICE)
                    pending -= {i for i in pending if self.routes[i].down in self.probed}
                    ready = time.monotonic()
        time.sleep(PROBE_SETTLE)  # late answers to repeated probes land before the measurement
        return ready - start

    def run_phase(
        self,
        window: int,
        seconds: float,
        pid: int | None,
        *,
        rate: float | None = None,
        side_pids: list[int] | None = None,
        cpu: int | None = None,
    ) -> PhaseResult:
        """Keep ``window`` round trips in flight per route for ``seconds`` (at most ``rate`` messages/s
        started), then drain (bounded). ``side_pids``: the other processes of the chain, whose CPU is
        measured too (to tell when the load side, not the system, was the limit); ``cpu``: the CPU the
        system is pinned to (its busy share, all processes included, is measured)."""
        n = len(self.routes)
        with self.cond:
            self.result = PhaseResult()
            self.inflight = [0] * n
        seqs = self.seqs
        side = [os.getpid(), *(side_pids or [])]
        cpu0, side0, busy0 = process_cpu(pid), total_cpu(side), cpu_busy(cpu)
        start = time.perf_counter_ns()
        self.last_reply = start
        t0 = time.monotonic()
        end = t0 + seconds
        nxt = 0
        while (now := time.monotonic()) < end:
            budget = n * window
            if rate is not None:
                budget = int(rate * (now - t0)) + 1 - self.result.sent
                if budget <= 0:
                    time.sleep(min(WAIT_SLICE, 1 / rate))
                    continue
            with self.cond:
                free = [i for i in range(n) if self.inflight[i] < window]
                if not free:
                    self.cond.wait(WAIT_SLICE)
                    continue
                batch = []
                for k in range(min(len(free), budget)):  # round robin, starting after the last route served
                    i = free[(nxt + k) % len(free)]
                    seqs[i] += 1
                    self.inflight[i] += 1
                    self.outstanding[(i, seqs[i])] = None
                    batch.append((i, seqs[i]))
                nxt += 1
            for i, seq in batch:
                self.pub.publish(self.routes[i].up, stamp(i, seq), qos=1)
                self.result.sent += 1
        deadline = time.monotonic() + DRAIN_TIMEOUT
        with self.cond:
            while self.outstanding and time.monotonic() < deadline:
                self.cond.wait(WAIT_SLICE)
            result = self.result
            result.lost = len(self.outstanding)
            self.expired.update(self.outstanding)
            self.outstanding.clear()
            result.seconds = (self.last_reply - start) / 1e9
        cpu1, side1, busy1 = process_cpu(pid), total_cpu(side), cpu_busy(cpu)
        if cpu0 is not None and cpu1 is not None:
            result.cpu_seconds = cpu1 - cpu0
        if side_pids is not None:
            result.side_cpu_seconds = side1 - side0
        if busy0 is not None and busy1 is not None and busy1[1] > busy0[1]:
            result.core_busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
        return result


# --- mosquitto ----------------------------------------------------------------------------------------------


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("bridge_bench: mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")


def start_mosquitto(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 100000",
        "set_tcp_nodelay true",
        f"log_dest file {tmp / 'mosquitto.log'}",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + BROKER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"bridge_bench: mosquitto exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise SystemExit(f"bridge_bench: mosquitto did not listen on 127.0.0.1:{port}") from None
            time.sleep(0.02)


# --- profiling (--profile) ----------------------------------------------------------------------------------


class Profiler:
    """py-spy on a running process for ``seconds``: a flame graph (SVG) and collapsed stacks (the same
    window, two samplers that never pause the process), then a summary by component."""

    def __init__(self, pid: int, seconds: float, out: Path, name: str) -> None:
        self.out, self.name = out, name
        out.mkdir(parents=True, exist_ok=True)
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.access(pyspy, os.X_OK):
            raise SystemExit("bridge_bench: --profile needs py-spy (pip install py-spy)")
        common = [
            pyspy, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE),
            "--duration", str(max(1, int(seconds))), "--nonblocking",
        ]  # fmt: skip
        self.pid = pid
        self.before = thread_stats(pid)
        self.t0 = time.monotonic()
        self.procs = [
            subprocess.Popen(
                [*common, "--format", fmt, "--output", str(out / f"{name}.{ext}")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for fmt, ext in (("flamegraph", "svg"), ("raw", "txt"))
        ]

    def finish(self, messages: int = 0) -> None:
        """Wait for py-spy; write ``<name>-threads.txt`` (CPU, run-queue wait and wake-ups by thread role,
        per message when ``messages``) and the summary of the collapsed stacks."""
        after, wall = thread_stats(self.pid), time.monotonic() - self.t0
        names = thread_names(self.pid)
        groups: dict[str, list[float]] = {}
        for tid, (run, wait, slices, vol) in after.items():
            b = self.before.get(tid, (0, 0, 0, 0))
            g = groups.setdefault(thread_group(names.get(tid, "")), [0, 0.0, 0.0, 0.0, 0.0])
            g[0] += 1
            g[1] += (run - b[0]) / 1e6
            g[2] += (wait - b[1]) / 1e6
            g[3] += slices - b[2]
            g[4] += vol - b[3]
        total_cpu_ms = sum(g[1] for g in groups.values()) or 1.0
        lines = [
            f"{self.name}: by thread role over {wall:.1f} s"
            + (f", {messages} round trips" if messages else "")
            + " (/proc/<pid>/task/*/schedstat and status)",
            f"  {'role':<38} {'threads':>7} {'CPU ms':>8} {'CPU %':>6} {'runq wait ms':>12}"
            f" {'wake-ups':>9} {'per msg: CPU ms':>16} {'wake-ups':>9}",
        ]
        for role, (n, cpu_ms, wait_ms, _slices, vol) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            per = f"{cpu_ms / messages:16.3f} {vol / messages:9.2f}" if messages else ""
            lines.append(
                f"  {role:<38} {n:>7.0f} {cpu_ms:>8.0f} {100 * cpu_ms / total_cpu_ms:>5.1f}% {wait_ms:>12.0f}"
                f" {vol:>9.0f} {per}"
            )
        all_cpu = sum(g[1] for g in groups.values())
        all_vol = sum(g[4] for g in groups.values())
        lines.append(
            f"  {'all':<38} {sum(g[0] for g in groups.values()):>7.0f} {all_cpu:>8.0f} {'':>6} "
            f"{sum(g[2] for g in groups.values()):>12.0f} {all_vol:>9.0f} "
            + (f"{all_cpu / messages:16.3f} {all_vol / messages:9.2f}" if messages else "")
        )
        (self.out / f"{self.name}-threads.txt").write_text("\n".join(lines) + "\n")
        for proc in self.procs:
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                proc.wait(STOP_TIMEOUT)
        raw = self.out / f"{self.name}.txt"
        if raw.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "profile_summary.py"),
                    str(raw),
                    "-o",
                    str(self.out / f"{self.name}-summary.txt"),
                ],
                check=False,
            )


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name (from ``py-spy dump``; empty without py-spy)."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        return {}
    try:
        dump = subprocess.run(
            [pyspy, "dump", "--pid", str(pid), "--nonblocking"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names: dict[int, str] = {}
    for line in dump.splitlines():
        # Thread 12345 (idle): "MainThread"
        if line.startswith("Thread "):
            parts = line.split()
            with contextlib.suppress(ValueError, IndexError):
                tid = int(parts[1], 0)
                names[tid] = line.split('"')[1] if '"' in line else parts[1]
    return names


# --- idle cost ----------------------------------------------------------------------------------------------


def measure_idle(pid: int, seconds: float, profile: Path | None = None, name: str = "") -> dict[str, Any]:
    """CPU % of one core and wake-ups per second of a process left alone for ``seconds``."""
    profiler = Profiler(pid, seconds, profile, name) if profile is not None else None
    cpu0, sw0, t0 = process_cpu(pid), thread_switches(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, sw1, t1 = process_cpu(pid), thread_switches(pid), time.monotonic()
    wall = t1 - t0
    per_thread = {tid: (sw1[tid] - sw0.get(tid, 0)) / wall for tid in sw1}
    out: dict[str, Any] = {
        "seconds": wall,
        "cpu_percent": (cpu1 - cpu0) / wall * 100 if cpu0 is not None and cpu1 is not None else None,
        "wakeups_per_s": sum(per_thread.values()),
        "threads": len(sw1),
    }
    if profiler is not None:
        profiler.finish()
    return out


# --- driver -------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every measurement shares."""

    load: LoadGenerator
    broker_port: int
    echo_port: int
    side_pids: list[int]
    quick: bool
    cpus: set[int] | None  # the system under test's CPU
    profile: Path | None


def _finish(system: System, out: dict[str, Any]) -> None:
    system.stop()
    log = system.log_text()
    if log:
        out["log_lines"] = len(log)
        out["log_first"] = log[0]
    system.cleanup()


def _error(system: System, out: dict[str, Any], err: Exception) -> None:
    out["error"] = str(err)
    tail = system.log_tail()
    if tail:
        out["error"] += "\n" + tail


def measure(kind: str, modems: int, setup: Setup) -> dict[str, Any]:
    """Stress mode: one system with in-process, unpaced emulated modems (``device: emulator``)."""
    system = start_system(kind, modems, setup.broker_port, setup.echo_port, cpus=setup.cpus)
    out: dict[str, Any] = {}
    load, quick = setup.load, setup.quick
    try:
        load.use(system.routes)
        out["ready_seconds"] = load.wait_ready(READY_TIMEOUT, system.proc)
        pid = system.pid
        cpu = min(setup.cpus) if setup.cpus else None
        out["latency"] = load.run_phase(1, LATENCY_SECONDS[quick], pid, cpu=cpu).summary()
        profiler = None
        if setup.profile is not None and kind == "bridge" and pid is not None:
            profiler = Profiler(pid, THROUGHPUT_SECONDS[quick], setup.profile, f"stress-{modems}")
        phase = load.run_phase(WINDOW, THROUGHPUT_SECONDS[quick], pid, cpu=cpu)
        if profiler is not None:
            profiler.finish(phase.received)
        out["throughput"] = phase.summary()
        out["peak_rss_mb"] = peak_rss_mb(pid) if pid is not None else None
        if system.proc is not None and system.proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with {system.proc.returncode}")
    except RuntimeError as err:
        _error(system, out, err)
    finally:
        _finish(system, out)
    return out


def measure_floor(modems: int, setup: Setup) -> dict[str, Any]:
    """Gateway mode's floor: :func:`run_floor` on ``modems`` fresh emulators, pinned as the bridge is."""
    out: dict[str, Any] = {}
    fleet = EmulatorFleet(modems, baud=BAUD)
    seconds = GATEWAY_THROUGHPUT_SECONDS[setup.quick]
    spec = {"ports": fleet.ports, "echo_port": setup.echo_port, "seconds": seconds}
    try:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--floor", json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: pin(setup.cpus)) if setup.cpus else None,  # noqa: PLW1509
        )
        cpu = min(setup.cpus) if setup.cpus else None
        side = setup.side_pids + fleet.pids
        time.sleep(0.5)  # set-up commands
        cpu0, side0, busy0 = process_cpu(proc.pid), total_cpu(side), cpu_busy(cpu)
        try:
            got = json.loads(read_line(proc, seconds + PROCESS_START_TIMEOUT))
        except (RuntimeError, ValueError) as err:
            raise RuntimeError(f"the floor client failed: {err}") from None
        cpu1, side1, busy1 = process_cpu(proc.pid), total_cpu(side), cpu_busy(cpu)
        proc.wait(STOP_TIMEOUT)
        phase: dict[str, Any] = dict.fromkeys(("lost", "corrupt", "duplicates", "late"), 0)
        phase.update(got)
        wall = got["seconds"] or 1.0
        phase["rate"] = got["received"] / wall
        phase["cpu_per_1000"] = (
            (cpu1 - cpu0) / got["received"] * 1000 if cpu0 and cpu1 and got["received"] else None
        )
        phase["cpu_share"] = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None
        phase["side_cpu_share"] = (side1 - side0) / wall
        phase["core_busy"] = (
            (busy1[0] - busy0[0]) / (busy1[1] - busy0[1]) if busy0 and busy1 and busy1[1] > busy0[1] else None
        )
        out["throughput"] = phase
    except RuntimeError as err:
        out["error"] = str(err)
    finally:
        fleet.stop()
    return out


def measure_gateway(kind: str, modems: int, setup: Setup, *, idle: bool) -> dict[str, Any]:
    """Gateway mode: the relay, or the bridge with ``modems`` emulator processes paced at :data:`BAUD`."""
    if kind == "floor":
        return measure_floor(modems, setup)
    out: dict[str, Any] = {}
    fleet = EmulatorFleet(modems, baud=BAUD) if kind == "bridge" else None
    devices = [f"socket://127.0.0.1:{port}" for port in fleet.ports] if fleet else None
    system = start_system(
        kind, modems, setup.broker_port, setup.echo_port, devices=devices, cpus=setup.cpus, tag="gw"
    )
    load, quick = setup.load, setup.quick
    side = setup.side_pids + (fleet.pids if fleet else [])
    cpu = min(setup.cpus) if setup.cpus else None
    try:
        load.use(system.routes)
        out["ready_seconds"] = load.wait_ready(READY_TIMEOUT, system.proc)
        pid = system.pid
        assert pid is not None
        out["latency"] = load.run_phase(
            1, GATEWAY_LATENCY_SECONDS[quick], pid, side_pids=side, cpu=cpu
        ).summary()
        # the relay is offered what the lines could carry; the bridge as much as its window allows
        rate = modems * line_limit() if kind == "relay" else None
        wire0 = fleet.line_bytes() if fleet else None
        profiler = None
        seconds = GATEWAY_THROUGHPUT_SECONDS[quick]
        if setup.profile is not None and kind == "bridge":
            profiler = Profiler(pid, seconds, setup.profile, f"gateway-{modems}")
        phase = load.run_phase(WINDOW, seconds, pid, rate=rate, side_pids=side, cpu=cpu)
        if profiler is not None:
            profiler.finish(phase.received)
        out["throughput"] = phase.summary()
        if fleet is not None and wire0 is not None and phase.received:
            wire1 = fleet.line_bytes()
            out["line_bytes"] = [(wire1[k] - wire0[k]) / phase.received for k in (0, 1)]
        out["peak_rss_mb"] = peak_rss_mb(pid)
        if idle:
            time.sleep(IDLE_SETTLE)
            out["idle"] = measure_idle(pid, IDLE_SECONDS[quick], setup.profile, f"idle-awake-{modems}")
        if system.proc is not None and system.proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with {system.proc.returncode}")
    except RuntimeError as err:
        _error(system, out, err)
    finally:
        _finish(system, out)
        if fleet is not None:
            fleet.stop()
    return out


def measure_psm_idle(modems: int, setup: Setup) -> dict[str, Any]:
    """The bridge with ``modems`` emulated modems that fall into PSM once idle: its cost while they sleep."""
    out: dict[str, Any] = {}
    fleet = EmulatorFleet(modems, baud=BAUD, psm=True)
    devices = [f"socket://127.0.0.1:{port}" for port in fleet.ports]
    system = start_system(
        "bridge", modems, setup.broker_port, setup.echo_port, devices=devices, cpus=setup.cpus, tag="psm"
    )
    try:
        setup.load.use(system.routes)
        out["ready_seconds"] = setup.load.wait_ready(READY_TIMEOUT, system.proc)
        start = time.monotonic()
        while not all(s["asleep"] for s in fleet.stats()):
            if time.monotonic() - start > PSM_SLEEP_TIMEOUT:
                raise RuntimeError(f"the emulated modems were not all in PSM after {PSM_SLEEP_TIMEOUT:g} s")
            time.sleep(0.5)
        out["asleep_after_s"] = time.monotonic() - start
        time.sleep(IDLE_SETTLE)
        assert system.pid is not None
        out["idle"] = measure_idle(system.pid, IDLE_SECONDS[setup.quick], setup.profile, f"idle-psm-{modems}")
        if not all(s["asleep"] for s in fleet.stats()):
            raise RuntimeError("a modem woke up during the idle window")
        if system.proc is not None and system.proc.poll() is not None:
            raise RuntimeError(f"the bridge exited with {system.proc.returncode}")
    except RuntimeError as err:
        _error(system, out, err)
    finally:
        _finish(system, out)
        fleet.stop()
    return out


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}"


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def ratio(value: float | None, base: float | None) -> str:
    return "n/a" if value is None or not base else f"{value / base:.2f}"


def keep_best(best: dict[str, Any] | None, got: dict[str, Any], round_no: int) -> dict[str, Any]:
    """Merge one round into the best so far: per phase the round with the higher rate (with its CPU and
    latencies); idle the round with the lower CPU; peak RSS the highest seen; every problem and error of
    every round is kept."""
    problems = list(best["problems"]) if best else []
    for phase in PHASES:
        p = got.get(phase)
        if p is None:
            continue
        counts = [f"{p[k]} {k}" for k in ("lost", "corrupt", "duplicates", "late") if p[k]]
        if counts:
            problems.append(f"round {round_no} {phase}: {', '.join(counts)} of {p['sent']} sent")
    if "error" in got:
        problems.append(f"round {round_no}: FAILED: {got['error']}")
    if got.get("log_lines"):
        problems.append(
            f"round {round_no}: wrote {got['log_lines']} log lines; the first: {got['log_first']}"
        )
    merged = dict(best or {})
    for phase in PHASES:
        p = got.get(phase)
        if p is not None and (phase not in merged or p["rate"] > merged[phase]["rate"]):
            merged[phase] = p
            if phase == "throughput" and "line_bytes" in got:
                merged["line_bytes"] = got["line_bytes"]
    idle = got.get("idle")
    if idle is not None and (
        "idle" not in merged or (idle["cpu_percent"] or 0) < (merged["idle"]["cpu_percent"] or 0)
    ):
        merged["idle"] = idle
    rss = [v for v in (merged.get("peak_rss_mb"), got.get("peak_rss_mb")) if v is not None]
    merged["peak_rss_mb"] = max(rss) if rss else None
    if "ready_seconds" in got:
        merged["ready_seconds"] = min(merged.get("ready_seconds", got["ready_seconds"]), got["ready_seconds"])
    if "asleep_after_s" in got:
        merged["asleep_after_s"] = got["asleep_after_s"]
    merged["failed"] = bool(merged.get("failed")) or "error" in got
    merged["problems"] = problems
    return merged


def _problems(kind: str, r: dict[str, Any]) -> bool:
    lost = False
    for problem in r.get("problems", []):
        print(f"  !! {kind}: " + problem.replace("\n", "\n       "))
        lost = lost or problem.endswith(" sent")
    return lost


def report(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Stress mode's table."""
    any_problem = False
    for scenario, by_kind in results.items():
        print(f"\n{scenario} (payload {PAYLOAD} bytes, MQTT QoS 1 both ways)")
        base = by_kind.get("relay", {})
        x = "x relay"
        print(
            f"  {'system':<7} {'phase':<10} {'msg/s':>8} {x:>8} {'p50 ms':>8} {x:>8} {'p99 ms':>8} {x:>8}"
            f" {'CPU s/1000':>11} {x:>8} {'peak RSS MB':>12} {x:>8}"
        )
        for kind, r in by_kind.items():
            for phase in PHASES:
                if phase not in r:
                    continue
                p, b = r[phase], base.get(phase, {})
                rss = r.get("peak_rss_mb") if phase == "throughput" else None
                print(
                    f"  {kind:<7} {phase:<10} {p['rate']:>8.0f} {ratio(p['rate'], b.get('rate')):>8}"
                    f" {fmt(p['p50_ms'], '.2f'):>8} {ratio(p['p50_ms'], b.get('p50_ms')):>8}"
                    f" {fmt(p['p99_ms'], '.2f'):>8} {ratio(p['p99_ms'], b.get('p99_ms')):>8}"
                    f" {fmt(p['cpu_per_1000'], '.3f'):>11}"
                    f" {ratio(p['cpu_per_1000'], b.get('cpu_per_1000')):>8}"
                    f" {fmt(rss, '.1f'):>12} {ratio(rss, base.get('peak_rss_mb')) if rss else '':>8}"
                )
            any_problem = _problems(kind, r) or any_problem
        ready = [f"{k} {r['ready_seconds']:.1f} s" for k, r in by_kind.items() if "ready_seconds" in r]
        if ready:
            print("  ready (first round trip on every route after start): " + ", ".join(ready))
    print(
        f"\nlatency: 1 message in flight per route; throughput: {WINDOW} in flight per route."
        "\nCPU and RSS: the system's own process (the bridge's includes its in-process emulated modems)."
        "\nbroker: mosquitto's pub->sub round trip (the floor); relay: a minimal paho+UDP relay (baseline)."
    )
    if any_problem:
        print(
            f"!! lost: no echo within {DRAIN_TIMEOUT:g} s after the phase; late: a lost one that came back"
            "\n   later; corrupt: payload or topic not as sent; duplicates: came back twice."
        )


GATEWAY_LEGEND = """
x line: round trips per second / (modems x {limit:.1f} msg/s); x floor: / the floor's rate (floor: a
raw-socket client doing the same AT exchange on fresh emulators, no MQTT: what the paced emulated lines
allow here). latency: 1 message in flight per route; throughput: {window} per route (the relay offered at
most the line limit). CPU ms/msg: the system's own process; core %: its CPU seconds per second; CPU0 %:
the busy share of its CPU (every process on it, other work on the machine included); load %: CPU seconds
per second of the load side (load generator, mosquitto, echo peer, emulators): near 100 x (CPUs - 1),
the load side may have been the limit."""


def report_gateway(results: dict[str, Any], cpus: set[int] | None) -> None:
    """Gateway mode's table, the idle rows and the issue's targets."""
    limit = line_limit()
    command, final, urc = native_udp_wire(PAYLOAD)
    pinned = f"pinned to CPU {','.join(map(str, sorted(cpus)))}" if cpus else "not pinned"
    print(
        f"\ngateway: each modem an emulator process paced at {BAUD} baud ({BAUD // 10} bytes/s each way),"
        f" native UDP routes, {PAYLOAD}-byte payloads,\nMQTT QoS 1 both ways, durable queue on;"
        f" the system under test {pinned}, everything else on the other CPUs."
        f"\nline limit per modem: {limit:.1f} msg/s (AT+CSOSEND {command} B + OK {final} B per command,"
        f" one command in flight; {final + urc} B back incl. the +CSONMI)"
    )
    any_problem = False
    scenarios = results.get("scenarios", {})
    for scenario, by_kind in scenarios.items():
        modems = by_kind.get("_modems", 1)
        agg = modems * limit
        print(f"\n{scenario} (line limit {agg:.0f} msg/s)")
        base = by_kind.get("relay", {})
        floor = by_kind.get("floor", {}).get("throughput", {}).get("rate")
        heads = [
            "msg/s",
            "x line",
            "x floor",
            "p50 ms",
            "p99 ms",
            "CPU ms/msg",
            "x relay",
            "core %",
            "CPU0 %",
        ]
        print(
            f"  {'system':<7} {'phase':<10} " + " ".join(f"{h:>7}" for h in heads) + "  load %  peak RSS MB"
        )
        for kind, r in by_kind.items():
            if kind.startswith("_"):
                continue
            for phase in PHASES:
                if phase not in r:
                    continue
                p, b = r[phase], base.get(phase, {})
                rss = r.get("peak_rss_mb") if phase == "throughput" else None
                cells = [
                    f"{p['rate']:.0f}",
                    f"{p['rate'] / agg:.2f}",
                    ratio(p["rate"], floor),
                    fmt(p["p50_ms"], ".1f"),
                    fmt(p["p99_ms"], ".1f"),
                    fmt(p["cpu_per_1000"], ".3f"),
                    ratio(p["cpu_per_1000"], b.get("cpu_per_1000")),
                    percent(p.get("cpu_share")),
                    percent(p.get("core_busy")),
                    percent(p.get("side_cpu_share")),
                ]
                print(
                    f"  {kind:<7} {phase:<10} "
                    + " ".join(f"{c:>7}" for c in cells)
                    + f"  {fmt(rss, '.1f'):>11}"
                )
            t = r.get("throughput", {})
            if kind == "bridge" and t.get("cpu_per_1000"):
                ceiling = 1000 / t["cpu_per_1000"]
                print(
                    f"  {kind}: at {t['cpu_per_1000']:.2f} CPU ms per message one core would carry"
                    f" {ceiling:.0f} msg/s, {ceiling / agg:.2f} of the line limit"
                )
            if "line_bytes" in r:
                up, down = r["line_bytes"]
                print(
                    f"  {kind}: line bytes per message, counted by the emulators: {up:.1f} to the modules,"
                    f" {down:.1f} from them (the AT forms: {command + 0} and {final + urc})"
                )
            any_problem = _problems(kind, r) or any_problem
        ready = [
            f"{k} {r['ready_seconds']:.1f} s"
            for k, r in by_kind.items()
            if not k.startswith("_") and "ready_seconds" in r
        ]
        if ready:
            print("  ready (first round trip on every route after start): " + ", ".join(ready))
    idle = results.get("idle", {})
    if idle:
        print("\nidle: the bridge left alone (CPU % of one core, wake-ups/s: voluntary context switches)")
        for name, r in idle.items():
            i = r.get("idle")
            if i is not None:
                extra = (
                    f", all asleep {r['asleep_after_s']:.1f} s after ready" if "asleep_after_s" in r else ""
                )
                print(
                    f"  {name:<30} CPU {fmt(i['cpu_percent'], '.2f'):>6} %"
                    f"   wake-ups {i['wakeups_per_s']:7.1f}/s   {i['threads']} threads,"
                    f" {i['seconds']:.0f} s{extra}"
                )
            any_problem = _problems("bridge", r) or any_problem
    print(GATEWAY_LEGEND.format(limit=limit, window=WINDOW))
    targets = results.get("targets")
    if targets:
        print("targets (issue 14): " + "; ".join(targets))
    if any_problem:
        print(
            f"!! lost: no echo within {DRAIN_TIMEOUT:g} s after the phase; late: a lost one that came back"
            "\n   later; corrupt: payload or topic not as sent; duplicates: came back twice."
        )


def targets(results: dict[str, Any]) -> list[str]:
    out = []
    scen = results.get("scenarios", {})
    top = max(scen.values(), key=lambda s: s.get("_modems", 0), default=None)
    if top is not None:
        n = top["_modems"]
        br = top.get("bridge", {}).get("throughput")
        rl = top.get("relay", {}).get("throughput")
        if br is not None:
            x = br["rate"] / (n * line_limit())
            out.append(
                f"{n} modem{'s' if n != 1 else ''} at {x:.2f} of the line limit"
                f" (>= 0.90: {'met' if x >= 0.9 else 'missed'})"
            )
        if br is not None and rl is not None and br["cpu_per_1000"] and rl["cpu_per_1000"]:
            x = br["cpu_per_1000"] / rl["cpu_per_1000"]
            out.append(f"CPU per message {x:.1f}x the relay's (<= 3x: {'met' if x <= 3 else 'missed'})")
    psm = results.get("idle", {})
    for name, r in psm.items():
        if "PSM" in name and r.get("idle") and r["idle"]["cpu_percent"] is not None:
            c = r["idle"]["cpu_percent"]
            out.append(f"{name}: {c:.2f} % of a core (< 1 %: {'met' if c < 1 else 'missed'})")
    return out


def prioritise(nice: int) -> None:
    """Run the chain at ``nice`` against the rest of the machine. On Linux with scheduler autogroups
    (``/proc/sys/kernel/sched_autogroup_enabled``) a process's nice value only counts inside its session's
    group and sessions share a CPU equally, so, when not run from a terminal (where a new session would no
    longer get the terminal's Ctrl+C), the benchmark starts its own session and sets that group's nice value
    too (the group ends with the benchmark)."""
    if not sys.stdin.isatty():
        try:
            os.setsid()
        except OSError:  # already a process group leader: leave the caller's group alone
            pass
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/autogroup").write_text(f"{nice}\n")
    os.nice(nice)


def choose_cpus(arg: str) -> tuple[set[int] | None, set[int] | None]:
    """(the system under test's CPUs, everyone else's); None, None when pinning is off or impossible."""
    if arg == "none" or not hasattr(os, "sched_setaffinity"):
        return None, None
    available = os.sched_getaffinity(0)
    system = {int(arg)}
    if not system <= available or len(available) < 2:
        print(
            f"bridge_bench: cannot pin to CPU {arg} (available: {sorted(available)}); not pinned",
            file=sys.stderr,
        )
        return None, None
    return system, available - system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--floor", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter phases (smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--stress",
        action="store_true",
        help="the unpaced stress test: the bridge's own in-process emulated modems, against the broker floor",
    )
    parser.add_argument("--modems", type=int, nargs="+", help="scenarios (modem counts)")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=sorted({*SYSTEMS, *GATEWAY_SYSTEMS}),
        help="systems to measure (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="rounds per system, best kept per phase (default 2 with --stress, else 1; --quick: 1)",
    )
    parser.add_argument(
        "--cpu",
        default="0",
        help="pin the system under test to this CPU and everything else to the others ('none': no pinning)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=-10 if hasattr(os, "geteuid") and os.geteuid() == 0 else 0,
        help="niceness change for the whole chain (default -10 as root: a gateway's cores are its own, and a"
        " shared machine's other work must not decide the figures; 0: leave it)",
    )
    parser.add_argument("--no-idle", action="store_true", help="gateway mode: skip the idle measurements")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy the bridge; flame graphs and summaries to DIR"
    )
    args = parser.parse_args(argv)
    if args.echo:
        return run_echo()
    if args.relay:
        return run_relay(json.loads(args.relay))
    if args.emulator:
        return run_emulator(json.loads(args.emulator))
    if args.floor:
        return run_floor(json.loads(args.floor))

    system_cpus, other_cpus = choose_cpus(args.cpu)
    if args.nice:
        try:
            prioritise(args.nice)  # every process of the chain inherits it
        except OSError as err:
            print(
                f"bridge_bench: cannot change the priority by {args.nice} ({err}); running as is",
                file=sys.stderr,
            )
    pin(other_cpus)  # this process and every child but the system under test
    rounds = args.repeat if args.repeat is not None else (1 if args.quick or not args.stress else 2)
    modem_counts = args.modems or list(SCENARIOS if args.stress else GATEWAY_SCENARIOS)
    systems = args.systems or list(SYSTEMS if args.stress else GATEWAY_SYSTEMS)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sim7020-bench-broker-") as tmp:
        broker, broker_port = start_mosquitto(Path(tmp))
        echo = subprocess.Popen(
            [sys.executable, __file__, "--echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        load: LoadGenerator | None = None
        try:
            echo_port = int(read_line(echo, PROCESS_START_TIMEOUT))
            load = LoadGenerator(broker_port)
            setup = Setup(
                load, broker_port, echo_port, [broker.pid, echo.pid], args.quick, system_cpus, args.profile
            )
            scenarios: dict[str, dict[str, Any]] = {}
            results["scenarios"] = scenarios
            for modems in modem_counts:
                scenario = f"{modems} modem{'s' if modems != 1 else ''}"
                scenarios[scenario] = {"_modems": modems}
                # systems take turns, round after round, and each phase keeps its best round: background
                # load on a shared machine only slows a round down, so the best is the fairest estimate
                for n in range(1, rounds + 1):
                    for kind in systems:
                        if kind not in (SYSTEMS if args.stress else GATEWAY_SYSTEMS):
                            continue
                        print(
                            f"  round {n}/{rounds}: {kind} with {scenario} ...", file=sys.stderr, flush=True
                        )
                        if args.stress:
                            got = measure(kind, modems, setup)
                        else:
                            idle = kind == "bridge" and modems == max(modem_counts) and not args.no_idle
                            got = measure_gateway(kind, modems, setup, idle=idle)
                        scenarios[scenario][kind] = keep_best(scenarios[scenario].get(kind), got, n)
            if not args.stress and not args.no_idle and "bridge" in systems:
                top = max(modem_counts)
                idle: dict[str, Any] = {}
                awake = scenarios[f"{top} modem{'s' if top != 1 else ''}"].get("bridge", {})
                if "idle" in awake:
                    idle[f"{top} modems awake, idle"] = {"idle": awake["idle"], "problems": []}
                for n in range(1, rounds + 1):
                    print(
                        f"  round {n}/{rounds}: bridge with {top} modems in PSM ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    name = f"{top} modems in PSM"
                    idle[name] = keep_best(idle.get(name), measure_psm_idle(top, setup), n)
                results["idle"] = idle
        finally:
            if load is not None:
                load.close()
            if echo.stdin is not None:
                echo.stdin.close()
            stop_process(echo)
            stop_process(broker)
    if not args.stress:
        results["targets"] = targets(results)
        results["line_limit_per_modem"] = line_limit()
    if args.json:
        print(json.dumps(results, indent=2))
    elif args.stress:
        report(
            {
                k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                for k, v in results["scenarios"].items()
            }
        )
    else:
        report_gateway(results, system_cpus)
    failed = any(
        r.get("failed")
        for by_kind in results.get("scenarios", {}).values()
        for kind, r in by_kind.items()
        if not kind.startswith("_")
    ) or any(r.get("failed") for r in results.get("idle", {}).values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
