"""Experiment (not the product): the bridge's durable queue replaced by lists in memory, on the event loop.

No sqlite, no fsync, no hop to the queue's thread: the upper bound of what any change to the queue (group
commit of deletes, an in-memory mirror for peeks, fewer thread hops) can gain. It gives up durability, so it
only measures. Run the benchmark with this directory first on ``PYTHONPATH`` (see bench/README.md,
"Experiments")::

    PYTHONPATH=bench/experiments/memory_queue .venvs/py311/bin/python bench/bridge_bench.py \
        --systems bridge
"""

import itertools
import time

import sim7020_core.bridge.queue as _queue

_ids = itertools.count(1)


def _store(self):
    return self.__dict__.setdefault("_bench_rows", {})


async def put_many(self, queue, items):
    rows = _store(self)
    ids = []
    for topic, payload in items:
        i = next(_ids)
        rows[i] = _queue.QueuedMessage(i, queue, topic, bytes(payload), time.time())
        ids.append(i)
    self.stats["put"] += len(ids)
    return ids


async def peek(self, queue, limit=100, *, after=0):
    found = [m for i, m in _store(self).items() if m.queue == queue and i > after]
    return found[:limit]


async def delete(self, ids):
    rows = _store(self)
    for i in ids:
        rows.pop(i, None)
    self.stats["deleted"] += 1


_queue.DurableQueue.put_many = put_many
_queue.DurableQueue.peek = peek
_queue.DurableQueue.delete = delete
