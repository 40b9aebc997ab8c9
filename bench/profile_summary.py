"""Summarise a py-spy profile (``py-spy record --format raw``: one collapsed stack and its sample count per
line) of the bridge: where its CPU goes, by thread and by component, and the top functions.

Each sample is one stack of one thread that was running (py-spy leaves idle threads out unless ``--idle``).

- **thread**: the paho network threads (``Client._thread_main``), the queue's sqlite thread and other
  executor threads (``concurrent/futures/thread.py``), the event loop's thread (the main thread), others;
- **component**: walking from the innermost frame outwards, the first frame that belongs to a known part:
  the project's modules (AT engine, native transport, link, routes, MQTT glue, queue, bridge state, modem),
  paho, asyncio and the thread hand-offs (``asyncio``, ``selectors``, ``threading``, ``concurrent``),
  JSON, logging. Other standard-library frames (``re``, ``enum``, ``dataclasses`` ...) count for the part
  that called them. A sample whose innermost known frame is the event loop waiting in ``epoll`` is
  "epoll wait" (py-spy saw the thread running while it entered or left the system call);
- **functions**: inclusive (the function is anywhere on the stack) and self (innermost frame) shares.

Run: ``python bench/profile_summary.py PROFILE.txt [-o SUMMARY.txt]`` (``bench/bridge_bench.py --profile``
calls it for every profile it records).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")

#: (component, does this file belong to it?) in order; the first match wins for a frame.
_COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("emulator (in-process: stress mode only)", ("sim7020_core/emulator/",)),
    ("AT engine (parser, scheduler)", ("sim7020_core/at/",)),
    ("native transport / connection", ("sim7020_plugins/", "sim7020_core/connection.py")),
    ("link (serial/socket I/O)", ("sim7020_core/link.py", "serial_asyncio_fast/", "serial/")),
    ("modem (status, watchdog, events)", ("sim7020_core/modem.py", "sim7020_core/status.py",
                                           "sim7020_core/reconnect.py", "sim7020_core/models.py")),
    ("bridge routes", ("sim7020_core/bridge/routes.py",)),
    ("bridge MQTT glue (loop side)", ("sim7020_core/bridge/mqtt.py",)),
    ("durable queue (loop side + sqlite calls)", ("sim7020_core/bridge/queue.py",)),
    ("bridge state / availability / commands", ("sim7020_core/bridge/bridge.py",
                                                 "sim7020_core/bridge/commands.py",
                                                 "sim7020_core/bridge/discovery.py")),
    ("paho (MQTT packets)", ("paho/",)),
    ("JSON", ("json/",)),
    ("logging", ("logging/",)),
    ("asyncio / thread hand-offs", ("asyncio/", "selectors.py", "threading.py", "concurrent/", "queue.py",
                                    "socket.py")),
]  # fmt: skip


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """[(frames outermost first as (function, file)), count]."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            m = _FRAME.match(raw)
            frames.append((m["func"], m["file"]) if m else (raw, ""))
        out.append((frames, int(count)))
    return out


def thread_kind(frames: list[tuple[str, str]]) -> str:
    files = " ".join(f for _, f in frames[:8])
    funcs = " ".join(fn for fn, _ in frames[:8])
    if "paho/" in files and "_thread_main" in funcs:
        return "paho network threads"
    if "concurrent/futures/thread.py" in files:
        return "executor threads (sqlite queue)"
    if "Thread._bootstrap" in funcs:
        return "other threads"
    return "event loop (main thread)"


#: Innermost frames where a thread blocks: a sample there is a thread py-spy saw runnable (woken and waiting
#: for the CPU, or entering/leaving the system call), not work.
_WAITS = {
    ("EpollSelector.select", "selectors.py"),  # the event loop's epoll
    ("Client._loop", "paho/mqtt/client.py"),  # paho's select() (its other lines take no measurable time)
    ("_worker", "concurrent/futures/thread.py"),  # an executor thread waiting for work
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
}
WAIT = "runnable at a blocking wait (not work)"


def component(frames: list[tuple[str, str]]) -> str:
    if frames[-1] in _WAITS:
        return WAIT
    for _func, file in reversed(frames):
        for name, prefixes in _COMPONENTS:
            if any(file.startswith(p) or f"/{p}" in file for p in prefixes):
                return name
    return "other"


def loop_callback(frames: list[tuple[str, str]]) -> str:
    """What the event loop was running: the first two frames after ``Handle._run`` (a task's coroutine, a
    ``call_soon_threadsafe`` callback from paho or the queue thread, a transport's read), or the loop's own
    frame when it was between callbacks."""
    for i, (func, file) in enumerate(frames):
        if func == "Handle._run" and file.startswith("asyncio/"):
            tail = [f for f, _ in frames[i + 1 : i + 3]]
            if tail and tail[0] in ("Task.__step", "Task.__wakeup"):
                tail = [f for f, _ in frames[i + 2 : i + 3]]
            return " > ".join(tail) or "(Handle._run itself)"
    for func, file in reversed(frames):
        if file.startswith("asyncio/base_events.py"):
            return f"(loop: {func})"
    return "(other)"


def summarise(path: Path) -> str:
    samples = parse(path)
    total = sum(c for _, c in samples)
    if not total:
        return f"{path.name}: no samples\n"
    by_thread: Counter[str] = Counter()
    by_component: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    by_callback: Counter[str] = Counter()
    for frames, count in samples:
        kind = thread_kind(frames)
        by_thread[kind] += count
        by_component[(kind, component(frames))] += count
        seen = set()
        for func, file in frames:
            key = f"{func} ({file})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
        func, file = frames[-1]
        self_time[f"{func} ({file})"] += count
        if kind.startswith("event loop") and frames[-1] not in _WAITS:
            by_callback[loop_callback(frames)] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    waits = sum(n for (_k, comp), n in by_component.items() if comp == WAIT)
    work = total - waits

    def of_work(n: int) -> str:
        return f"{100 * n / work:5.1f} %" if work else "  n/a  "

    lines = [
        f"{path.name}: {total} samples of runnable threads; {pct(waits)} of them at a blocking wait (woken,"
        " waiting for the CPU or in the system call), the rest is work",
        "",
        "work by thread (share of the work samples):",
    ]
    work_by_thread: Counter[str] = Counter()
    for (kind, comp), n in by_component.items():
        if comp != WAIT:
            work_by_thread[kind] += n
    for kind, n in work_by_thread.most_common():
        lines.append(f"  {of_work(n)}  {kind}")
    lines += ["", "work by thread and component (innermost known frame; share of the work samples):"]
    for kind, _ in work_by_thread.most_common():
        for (k, comp), n in sorted(by_component.items(), key=lambda kv: -kv[1]):
            if k == kind and comp != WAIT:
                lines.append(f"  {of_work(n)}  {kind:<32} {comp}")
    lines += ["", "runnable at a blocking wait, by thread (share of all samples):"]
    for (kind, comp), n in sorted(by_component.items(), key=lambda kv: -kv[1]):
        if comp == WAIT:
            lines.append(f"  {pct(n)}  {kind}")
    lines += ["", "event loop work by what the loop ran (the frames after Handle._run; share of the work):"]
    for key, n in by_callback.most_common(25):
        lines.append(f"  {of_work(n)}  {key}")
    lines += ["", "top functions, inclusive (anywhere on the stack; share of all samples):"]
    lines += [f"  {pct(n)}  {key}" for key, n in inclusive.most_common(45)]
    lines += ["", "top functions, self (innermost frame; share of all samples):"]
    lines += [f"  {pct(n)}  {key}" for key, n in self_time.most_common(30)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="py-spy raw (collapsed stacks) file")
    parser.add_argument("-o", "--output", type=Path, help="write the summary here (default: stdout)")
    args = parser.parse_args(argv)
    text = summarise(args.profile)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
