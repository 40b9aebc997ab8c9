"""Chaos: one bounded run of everything that goes wrong in the field, in a seeded random order (issue 13).

The pieces run as they do in the field, each in its own process: the bridge (``python -m sim7020_core
bridge``), a real mosquitto with persistence, and the emulated module (:mod:`.emulator_process`, so the module
and the sockets it holds outlive a killed bridge). The remote peer is a UDP server in this process, reached
through two routes. A publisher sends a numbered stream of QoS 1 uplinks throughout, and the faults come one
after another at random moments:

* the bridge killed with SIGKILL and restarted (three times);
* the broker stopped with SIGTERM, and killed with SIGKILL, and started again on the same port;
* the module rebooted, and stalled (it answers nothing for a few seconds);
* ``state_dir`` (a tmpfs mounted by the test) filled to the last byte, the bridge killed and restarted while
  it is full, then space given back.

It asserts what an operator relies on (docs/bridge.md, *Durability* and *Failure modes*):

* **nothing lost**: every uplink the broker acknowledged to the publisher reaches the peer;
* **duplicates within the design's bound**: delivery is at least once, and each fault can repeat only what was
  in flight when it struck: the messages the broker had sent the bridge's data session and not yet had
  acknowledged (its in-flight window, ``max_inflight_messages``), the publisher's own unacknowledged publishes
  (paho's in-flight window) and one send per route (stored, handed to the module, not yet deleted). So no
  message arrives more than ``1 + faults`` times, and in all at most ``faults x`` (those windows) duplicates;
* **delivery resumes by itself**: after each fault, a message published after the fault ended reaches the peer
  within :data:`RESUME_BOUND` seconds, with nobody restarting anything but the process that was killed.

The seed is printed; ``SIM7020_CHAOS_SEED=<seed>`` replays a run's schedule (the timing of the machine still
varies). The figures (seed, sent, delivered, lost, duplicates, longest stall) are printed in the test output,
also without ``-s``, and recorded as properties of the test (JUnit XML).

Broker SIGKILL: mosquitto acknowledges a publish before its persistence has written it (it saves from its
main loop; here on every change, ``autosave_on_changes``), so a SIGKILL can lose a publish it has just
acknowledged, a limit of the broker and not of the bridge. The publisher therefore pauses for
:data:`BROKER_SAVE_PAUSE` before that kill, once everything it sent is acknowledged; what the broker holds for
the bridge then (queued for the data session, or in flight to it) is killed with the broker, which is the case
under test.

Needs root to mount the tmpfs (CI runs as root); without it the test is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .conftest import Broker, Watcher
from .test_bridge import start_bridge_process, write_config
from .test_full_disk import SmallDisk, mounted_small_disk

ROOT = Path(__file__).resolve().parents[2]

#: Uplinks per second, alternating between the two routes.
PUBLISH_RATE = 20.0
#: The random pause before each fault (seconds): the "random moment" it strikes.
GAP = (1.0, 3.0)
#: How long the bridge or the broker stays down (seconds).
DOWN = (0.0, 2.0)
#: How long the module stalls (seconds): around and beyond the 5 s a UDP send waits for its answer.
STALL = (2.0, 6.0)
#: How long the disk stays full before the bridge is killed, and after it was started again (seconds).
FULL_BEFORE_KILL = (1.0, 2.0)
FULL_AFTER_RESTART = (2.0, 4.0)
#: How long the test waits for the running bridge to report the full disk (seconds; it goes on writing into
#: its WAL file's room first, and a queue in its steady state may need no new block at all).
FULL_NOTICE_TIMEOUT = 10.0


STORAGE_PROBLEM = "problem: storage"
#: Delivery resumes within this after each fault ends (seconds). The longest waits in play: the queue's retry
#: backoff (0.5 s doubling, capped at 10 s; ~4 s after a few seconds of full disk); the MQTT reconnect
#: backoff after a broker restart (1 s doubling; a few seconds here); a UDP send that a module still stalled
#: swallowed, which waits its full 5 s and the next backoff step (1 s) once the module answers again (~6 s);
#: and a bridge process starting (imports, modem, broker: 1-3 s on a loaded 2-core machine).
RESUME_BOUND = 20.0
#: After the last fault: everything published must be acknowledged and delivered within this (seconds).
DRAIN_TIMEOUT = 40.0
#: The publisher's pause before a broker SIGKILL (see the module docstring), seconds.
BROKER_SAVE_PAUSE = 0.3
#: In-flight windows behind the duplicate bound: the broker's per session (conftest's mosquitto.conf), paho's
#: default for the publisher, and one send per route.
BROKER_INFLIGHT = 100
PUBLISHER_INFLIGHT = 20
ROUTES = 2
#: Size of the state_dir tmpfs: room for the queue and its WAL (sqlite checkpoints it at ~4 MB).
TMPFS_SIZE = "16m"
#: Bound on the whole test (pytest-timeout); a run takes 40-70 s.
CHAOS_TIMEOUT = 300
PROCESS_TIMEOUT = 10.0

FAULTS = [
    "bridge_kill",
    "bridge_kill",
    "bridge_kill",
    "broker_term",
    "broker_kill",
    "module_reboot",
    "module_stall",
    "disk_full",
]


# --- the pieces -------------------------------------------------------------------------------------------


class EmulatorProcess:
    """The emulated module in its own process (:mod:`.emulator_process`), faults over its stdin."""

    def __init__(self, log: Path) -> None:
        self._stderr = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bridge.emulator_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
        )
        self.port = int(self._read_line())

    def _read_line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], PROCESS_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the emulator process did not answer (exit code {self.proc.poll()})")
        return line.strip()

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self._read_line()
        assert answer.startswith("ok"), f"emulator: {line!r} -> {answer!r}"
        return answer.removeprefix("ok").strip()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(PROCESS_TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


class Peer:
    """The remote UDP peer, in a thread: every datagram with its arrival time (monotonic)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[tuple[float, int]] = []  # (arrival, sequence number)
        self.foreign: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-peer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            try:
                self.received.append((now, int(data.removeprefix(b"chaos-"))))
            except ValueError:
                self.foreign.append(data)

    def first_arrival_from(self, seq: int) -> float | None:
        """When the first message numbered ``seq`` or later arrived (None: none yet)."""
        return next((t for t, n in list(self.received) if n >= seq), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class Publisher:
    """A numbered stream of QoS 1 uplinks at :data:`PUBLISH_RATE`, in a thread, on a persistent session."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="chaos-publisher", clean_session=False
        )
        self.client.reconnect_delay_set(0.1, 1)
        self.client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
        self._lock = threading.Lock()
        self.sent_at: list[float] = []  # by sequence number
        self._mid_seq: dict[int, int] = {}
        self._acked_mids: set[int] = set()
        self.client.on_publish = self._on_publish
        self._running = threading.Event()
        self._stop = threading.Event()
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="chaos-publisher", daemon=True)
        self._thread.start()

    def _on_publish(self, _c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self._acked_mids.add(mid)

    def _run(self) -> None:
        interval = 1 / PUBLISH_RATE
        next_at = time.monotonic()
        while not self._stop.is_set():
            if not self._running.wait(0.1):
                next_at = time.monotonic()
                continue
            with self._lock:
                if self._stop.is_set() or not self._running.is_set():  # paused or closed meanwhile
                    continue
                seq = len(self.sent_at)
                info = self.client.publish(f"chaos/{'ab'[seq % 2]}/{seq}", f"chaos-{seq:06d}", qos=1)
                self._mid_seq[info.mid] = seq
                self.sent_at.append(time.monotonic())
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def resume(self) -> None:
        self._running.set()

    def pause(self) -> None:
        with self._lock:  # a publish in progress ends first
            self._running.clear()

    @property
    def sent(self) -> int:
        return len(self.sent_at)

    def acknowledged(self) -> set[int]:
        """Sequence numbers the broker acknowledged."""
        with self._lock:
            return {self._mid_seq[mid] for mid in self._acked_mids if mid in self._mid_seq}

    def first_sent_after(self, moment: float) -> int | None:
        return next((seq for seq, t in enumerate(list(self.sent_at)) if t >= moment), None)

    def wait_all_acknowledged(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acknowledged()) == self.sent:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Fault:
    kind: str
    started: float
    ended: float = 0.0
    detail: str = ""
    resumed_after: float | None = None  # seconds from ``ended`` to the first new delivery

    def describe(self, origin: float) -> str:
        resumed = "not resumed" if self.resumed_after is None else f"resumed after {self.resumed_after:.1f} s"
        return f"{self.started - origin:6.1f} s {self.kind} ({self.detail}): {resumed}"


@dataclass
class Chaos:
    """The system under test and the schedule's state."""

    rng: random.Random
    broker: Broker
    emulator: EmulatorProcess
    disk: SmallDisk
    config: Path
    log: Path
    bridge: subprocess.Popen[bytes] | None = None
    faults: list[Fault] = field(default_factory=list)

    def start_bridge(self) -> None:
        self.bridge = start_bridge_process(self.config, self.log)

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        assert self.bridge.poll() is None, f"the bridge died by itself:\n{self.log_tail()}"
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait(PROCESS_TIMEOUT)

    def stop_bridge(self) -> int | None:
        bridge, self.bridge = self.bridge, None
        if bridge is None:
            return None
        if bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
            try:
                return bridge.wait(30)
            except subprocess.TimeoutExpired:
                bridge.kill()
                bridge.wait(PROCESS_TIMEOUT)
                return None
        return bridge.returncode

    def kill_broker(self) -> None:
        proc, self.broker.proc = self.broker.proc, None
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(PROCESS_TIMEOUT)
        if proc.stderr:
            proc.stderr.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:] or "(no log)"


# --- faults -----------------------------------------------------------------------------------------------


def run_fault(chaos: Chaos, publisher: Publisher, kind: str) -> Fault:
    """Inject one fault, then undo it (restart what was killed, give space back); ``ended``: when it is."""
    rng = chaos.rng
    fault = Fault(kind, time.monotonic())
    if kind == "bridge_kill":
        down = rng.uniform(*DOWN)
        chaos.kill_bridge()
        time.sleep(down)
        chaos.start_bridge()
        fault.detail = f"down {down:.1f} s"
    elif kind == "broker_term":
        down = rng.uniform(*DOWN)
        chaos.broker.stop()
        time.sleep(down)
        chaos.broker.start()
        fault.detail = f"down {down:.1f} s"
    elif kind == "broker_kill":
        down = rng.uniform(*DOWN)
        publisher.pause()
        assert publisher.wait_all_acknowledged(PROCESS_TIMEOUT), "the broker stopped acknowledging publishes"
        time.sleep(BROKER_SAVE_PAUSE)
        fault.started = time.monotonic()
        chaos.kill_broker()
        time.sleep(down)
        chaos.broker.start()
        publisher.resume()
        fault.detail = f"down {down:.1f} s"
    elif kind == "module_reboot":
        chaos.emulator.command("reboot")
    elif kind == "module_stall":
        seconds = rng.uniform(*STALL)
        chaos.emulator.command(f"stall {seconds:.2f}")
        time.sleep(seconds)
        fault.detail = f"{seconds:.1f} s"
    elif kind == "disk_full":
        before, after = rng.uniform(*FULL_BEFORE_KILL), rng.uniform(*FULL_AFTER_RESTART)
        reported = chaos.log_text().count(STORAGE_PROBLEM)
        chaos.disk.fill()
        # sqlite goes on writing into the room its WAL file already has: the disk is full for the bridge
        # once that is used up, which the bridge reports. A queue in its steady state (rows deleted as fast
        # as they come, the WAL reused after each checkpoint) may need no new block at all: then the running
        # bridge rightly has nothing to report, and the restart below is where the full disk bites.
        deadline = time.monotonic() + FULL_NOTICE_TIMEOUT
        noticed: float | None = None
        while time.monotonic() < deadline:
            if chaos.log_text().count(STORAGE_PROBLEM) > reported:
                noticed = time.monotonic() - fault.started
                break
            time.sleep(0.05)
        time.sleep(before)
        chaos.kill_bridge()
        chaos.start_bridge()  # it cannot open its queue: it must wait for space, not exit
        time.sleep(after)
        assert chaos.bridge is not None
        assert chaos.bridge.poll() is None, f"the bridge exited on a full disk:\n{chaos.log_tail()}"
        chaos.disk.free()
        full = time.monotonic() - fault.started
        fault.detail = (
            f"full {full:.1f} s, "
            + (f"reported after {noticed:.1f} s" if noticed is not None else "not reported (room in the WAL)")
            + f", the bridge killed and restarted {before:.1f} s later"
        )
    else:
        raise AssertionError(f"unknown fault {kind}")
    fault.ended = time.monotonic()
    return fault


def wait_resumed(publisher: Publisher, peer: Peer, fault: Fault) -> None:
    """Wait until a message published after the fault ended reaches the peer (at most RESUME_BOUND)."""
    deadline = fault.ended + RESUME_BOUND
    while time.monotonic() < deadline:
        seq = publisher.first_sent_after(fault.ended)
        arrival = peer.first_arrival_from(seq) if seq is not None else None
        if arrival is not None:
            fault.resumed_after = max(0.0, arrival - fault.ended)
            return
        time.sleep(0.02)


# --- the test ---------------------------------------------------------------------------------------------


@pytest.fixture
def state_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A small tmpfs for ``state_dir`` that the test fills to the last byte."""
    yield from mounted_small_disk(
        tmp_path / "state_disk", TMPFS_SIZE, "the chaos test fills state_dir on a tmpfs it mounts"
    )


@pytest.mark.slow
@pytest.mark.timeout(CHAOS_TIMEOUT)
def test_chaos(
    tmp_path: Path,
    state_disk: SmallDisk,
    make_broker: Callable[..., Broker],
    watcher_factory: Callable[..., Watcher],
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = int(os.environ.get("SIM7020_CHAOS_SEED") or random.SystemRandom().randrange(1_000_000))
    rng = random.Random(seed)
    schedule = list(FAULTS)
    rng.shuffle(schedule)
    with capsys.disabled():
        print(f"\nchaos: seed {seed} (SIM7020_CHAOS_SEED={seed} replays it); faults: {', '.join(schedule)}")
    record_property("chaos_seed", seed)

    broker = make_broker(persistence=True, extra=["autosave_on_changes true"])
    peer = Peer()
    emulator = EmulatorProcess(tmp_path / "emulator.log")
    body = f"""\
routes:
  - name: a
    modem: gw1
    protocol: udp
    host: 127.0.0.1
    port: {peer.port}
    uplink: chaos/a/+
  - name: b
    modem: gw1
    protocol: udp
    host: 127.0.0.1
    port: {peer.port}
    uplink: chaos/b/+
"""
    config = write_config(tmp_path, broker, body, mqtt_extra="keepalive: 10")
    config.write_text(
        config.read_text()
        .replace("state_dir: state", f"state_dir: {state_disk.path / 'state'}")
        .replace("device: emulator", f"device: socket://127.0.0.1:{emulator.port}")
    )
    chaos = Chaos(rng, broker, emulator, state_disk, config, tmp_path / "bridge.log")
    watcher = watcher_factory(broker)
    watcher.subscribe("sim7020/gw1/availability")
    publisher: Publisher | None = None
    started = time.monotonic()
    try:
        chaos.start_bridge()
        watcher.expect("sim7020/gw1/availability", 60, where=lambda m: m.payload == b"online")
        publisher = Publisher(broker)
        publisher.resume()
        first = Fault("start", time.monotonic())
        first.ended = first.started
        wait_resumed(publisher, peer, first)
        assert first.resumed_after is not None, f"nothing delivered at the start:\n{chaos.log_tail()}"

        for kind in schedule:
            time.sleep(rng.uniform(*GAP))
            fault = run_fault(chaos, publisher, kind)
            chaos.faults.append(fault)
            wait_resumed(publisher, peer, fault)
            if fault.resumed_after is None:
                break  # reported below

        publisher.pause()
        all_acknowledged = publisher.wait_all_acknowledged(DRAIN_TIMEOUT)
        acknowledged = publisher.acknowledged()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and not acknowledged <= {n for _, n in peer.received}:
            time.sleep(0.1)
        module_sockets = int(emulator.command("sockets"))
        bridge_exit = chaos.stop_bridge()
    finally:
        if publisher is not None:
            publisher.close()
        chaos.stop_bridge()
        emulator.stop()
        peer.close()
    elapsed = time.monotonic() - started

    sent = publisher.sent
    counts = Counter(n for _, n in peer.received)
    lost = sorted(acknowledged - set(counts))
    duplicates = sum(c - 1 for c in counts.values())
    stalls = [f.resumed_after for f in chaos.faults if f.resumed_after is not None]
    longest = max(stalls, default=0.0)
    figures = {
        "seed": seed,
        "sent": sent,
        "delivered": len(counts),
        "lost": len(lost),
        "duplicates": duplicates,
        "longest_stall_s": round(longest, 1),
    }
    for name, value in figures.items():
        record_property(f"chaos_{name}", value)
    timeline = "\n".join(f.describe(started) for f in chaos.faults)
    with capsys.disabled():
        print(f"chaos: {len(chaos.faults)} faults in {elapsed:.0f} s:\n{timeline}")
        print("chaos: " + ", ".join(f"{name} {value}" for name, value in figures.items()))

    report = f"seed {seed}; faults:\n{timeline}\nbridge log (end):\n{chaos.log_tail()}"
    not_resumed = [f for f in chaos.faults if f.resumed_after is None]
    assert not not_resumed, (
        f"delivery did not resume within {RESUME_BOUND} s after {not_resumed[0].kind}; {report}"
    )
    assert all_acknowledged, f"the broker never acknowledged {sent - len(acknowledged)} publishes; {report}"
    assert not lost, f"{len(lost)} acknowledged uplinks lost, e.g. {lost[:10]}; {report}"
    assert not peer.foreign, f"foreign datagrams at the peer: {peer.foreign[:3]}"
    assert set(counts) <= set(range(sent)), "the peer got numbers nobody sent"
    faults = len(chaos.faults)
    assert max(counts.values()) <= 1 + faults, (
        f"a message repeated more than once per fault: {counts.most_common(3)}"
    )
    bound = faults * (BROKER_INFLIGHT + PUBLISHER_INFLIGHT + ROUTES)
    assert duplicates <= bound, f"{duplicates} duplicates, more than {bound}; {report}"
    assert longest <= RESUME_BOUND
    # the module holds only the routes' sockets: those of killed bridges were reclaimed
    assert module_sockets <= ROUTES, f"the module holds {module_sockets} sockets; {report}"
    assert bridge_exit == 0, f"the bridge did not stop cleanly on SIGTERM; {report}"
    log = chaos.log.read_text(errors="replace")
    assert "Traceback" not in log, report
    assert "was never retrieved" not in log, report
