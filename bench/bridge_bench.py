"""Benchmark of the MQTT bridge (issue 5): MQTT -> modem -> UDP peer -> back, with 1 and with 20 modems.

Every figure is measured on the same chain of real processes on loopback:

- a mosquitto broker (Debian's ``/usr/sbin/mosquitto``, on a free 127.0.0.1 port, ``persistence false``,
  ``set_tcp_nodelay true``);
- a UDP echo peer (its own process) that sends every datagram back to where it came from;
- the load generator (this process): a paho publisher (QoS 1) stamps each message with its route, a sequence
  number and the send time (``time.perf_counter_ns``), a paho subscriber (QoS 1) on the downlink topics takes
  the round trip when the echo comes back, and checks the payload arrived intact;
- the system under test, each in its own process so its CPU seconds and peak RSS are its own:

  * ``broker``: no relay at all: the subscriber listens on the uplink topic itself (mosquitto's pub->sub
    round trip, the floor);
  * ``relay``: the **baseline**: a tiny paho relay (``--relay``, below) that sends each uplink message as a
    UDP datagram to the echo peer and publishes the answer on the downlink topic (QoS 1, ``TCP_NODELAY``,
    no modem, no durability);
  * ``bridge``: ``python -m sim7020_core bridge -c bridge.yaml`` with ``device: emulator`` modems (the
    built-in emulator, unpaced, in the bridge's process: its CPU is counted in the bridge's) and one
    ``native`` UDP route per modem to the echo peer.

Two phases per system: *latency* (one message in flight per route: the round trip of an idle chain) and
*throughput* (``WINDOW`` messages in flight per route: messages/s, and the round trip under that load).
The systems take turns for ``--repeat`` rounds (2; ``--quick``: 1) and each phase keeps its best round, as
background load on a shared machine only slows a round down. Figures are printed as ratios against the relay
baseline of the same run. Every wait is bounded: messages that never come back are counted and reported, and
the run goes on (exit status 1 when a system failed).

Run: ``bench/run bridge`` (or ``python bench/bridge_bench.py [--quick] [--json]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import selectors
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

from sim7020_core.bridge.broker import find_mosquitto, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Payload size on the wire (the stamp, padded with dots).
PAYLOAD = 64
#: Messages in flight per route in the throughput phase.
WINDOW = 16
#: Seconds of publishing per phase (full run, --quick run).
LATENCY_SECONDS = (2.0, 1.0)
THROUGHPUT_SECONDS = (4.0, 2.0)
#: Modem counts of the two scenarios.
SCENARIOS = (1, 20)
#: Systems under test, in the order measured (the relay is the baseline of the ratios).
SYSTEMS = ("broker", "relay", "bridge")
PHASES = ("latency", "throughput")

#: Bounds on every wait.
BROKER_START_TIMEOUT = 10.0
PROCESS_START_TIMEOUT = 10.0
#: The system under test must answer a probe on every route within this (the bridge opens 20 modems).
READY_TIMEOUT = 90.0
PROBE_INTERVAL = 0.25
PROBE_SETTLE = 0.5
#: After the last publish of a phase, wait this long for the outstanding round trips.
DRAIN_TIMEOUT = 15.0
MQTT_CONNECT_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0
WAIT_SLICE = 0.1


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


def bridge_yaml(modems: int, broker_port: int, echo_port: int, state_dir: Path, prefix: str) -> str:
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
        lines += [f"  - id: m{i}", "    device: emulator"]
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


def start_system(kind: str, modems: int, broker_port: int, echo_port: int) -> System:
    prefix = f"bench-{kind}{modems}-{os.getpid()}"
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
        config.write_text(bridge_yaml(modems, broker_port, echo_port, Path(tmp.name) / "state", prefix))
        argv = [sys.executable, "-m", "sim7020_core", "bridge", "-c", str(config), "--log-level", "WARNING"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT
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

    def run_phase(self, window: int, seconds: float, pid: int | None) -> PhaseResult:
        """Keep ``window`` round trips in flight per route for ``seconds``, then drain (bounded)."""
        n = len(self.routes)
        with self.cond:
            self.result = PhaseResult()
            self.inflight = [0] * n
        seqs = self.seqs
        cpu0 = process_cpu(pid)
        start = time.perf_counter_ns()
        self.last_reply = start
        end = time.monotonic() + seconds
        nxt = 0
        while time.monotonic() < end:
            with self.cond:
                free = [i for i in range(n) if self.inflight[i] < window]
                if not free:
                    self.cond.wait(WAIT_SLICE)
                    continue
                batch = []
                for k in range(len(free)):  # round robin, starting after the last route served
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
        cpu1 = process_cpu(pid)
        if cpu0 is not None and cpu1 is not None:
            result.cpu_seconds = cpu1 - cpu0
        return result


# --- mosquitto ----------------------------------------------------------------------------------------------


def mosquitto_binary() -> str:
    found = find_mosquitto()
    if found is None:
        raise SystemExit(
            "bridge_bench: mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)"
        )
    return found


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


# --- driver -------------------------------------------------------------------------------------------------


def measure(
    kind: str, modems: int, load: LoadGenerator, broker_port: int, echo_port: int, quick: bool
) -> dict[str, Any]:
    system = start_system(kind, modems, broker_port, echo_port)
    out: dict[str, Any] = {}
    try:
        load.use(system.routes)
        out["ready_seconds"] = load.wait_ready(READY_TIMEOUT, system.proc)
        pid = system.proc.pid if system.proc is not None else None
        out["latency"] = load.run_phase(1, LATENCY_SECONDS[quick], pid).summary()
        out["throughput"] = load.run_phase(WINDOW, THROUGHPUT_SECONDS[quick], pid).summary()
        out["peak_rss_mb"] = peak_rss_mb(pid) if pid is not None else None
        if system.proc is not None and system.proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with {system.proc.returncode}")
    except RuntimeError as err:
        out["error"] = str(err)
        tail = system.log_tail()
        if tail:
            out["error"] += "\n" + tail
    finally:
        system.stop()
        log = system.log_text()
        if log:
            out["log_lines"] = len(log)
            out["log_first"] = log[0]
        system.cleanup()
    return out


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def ratio(value: float | None, base: float | None) -> str:
    return "n/a" if value is None or not base else f"{value / base:.2f}"


def keep_best(best: dict[str, Any] | None, got: dict[str, Any], round_no: int) -> dict[str, Any]:
    """Merge one round into the best so far: per phase the round with the higher rate (with its CPU and
    latencies); peak RSS the highest seen; every problem and error of every round is kept."""
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
    rss = [v for v in (merged.get("peak_rss_mb"), got.get("peak_rss_mb")) if v is not None]
    merged["peak_rss_mb"] = max(rss) if rss else None
    if "ready_seconds" in got:
        merged["ready_seconds"] = min(merged.get("ready_seconds", got["ready_seconds"]), got["ready_seconds"])
    merged["failed"] = bool(merged.get("failed")) or "error" in got
    merged["problems"] = problems
    return merged


def report(results: dict[str, dict[str, dict[str, Any]]]) -> None:
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
            for problem in r["problems"]:
                print(f"  !! {kind}: " + problem.replace("\n", "\n       "))
                any_problem = any_problem or problem.endswith(" sent")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter phases (smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--modems", type=int, nargs="+", default=list(SCENARIOS), help="scenarios (modem counts)"
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEMS,
        default=list(SYSTEMS),
        help="systems to measure (default: all)",
    )
    parser.add_argument(
        "--repeat", type=int, help="rounds per system, best kept per phase (default 2; --quick: 1)"
    )
    args = parser.parse_args(argv)
    if args.echo:
        return run_echo()
    if args.relay:
        return run_relay(json.loads(args.relay))

    rounds = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="sim7020-bench-broker-") as tmp:
        broker, broker_port = start_mosquitto(Path(tmp))
        echo = subprocess.Popen(
            [sys.executable, __file__, "--echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        load: LoadGenerator | None = None
        try:
            echo_port = int(read_line(echo, PROCESS_START_TIMEOUT))
            load = LoadGenerator(broker_port)
            for modems in args.modems:
                scenario = f"{modems} modem{'s' if modems != 1 else ''}"
                results[scenario] = {}
                # systems take turns, round after round, and each phase keeps its best round: background
                # load on a shared machine only slows a round down, so the best is the fairest estimate
                for n in range(1, rounds + 1):
                    for kind in args.systems:
                        print(
                            f"  round {n}/{rounds}: {kind} with {scenario} ...", file=sys.stderr, flush=True
                        )
                        got = measure(kind, modems, load, broker_port, echo_port, args.quick)
                        results[scenario][kind] = keep_best(results[scenario].get(kind), got, n)
        finally:
            if load is not None:
                load.close()
            if echo.stdin is not None:
                echo.stdin.close()
            stop_process(echo)
            stop_process(broker)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    failed = any(r["failed"] for by_kind in results.values() for r in by_kind.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
