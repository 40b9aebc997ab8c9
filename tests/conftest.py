"""Settings and checks shared by the whole suite.

- Hypothesis: the ``sim7020`` profile (below).
- :func:`verify_no_lingering_tasks`: every test must leave no asyncio task and no timer of its event loop
  behind, as aioesphomeapi's tests/conftest.py checks
  (https://github.com/esphome/aioesphomeapi/blob/main/tests/conftest.py): a task or a timer still running
  after the test and its fixtures finished is a leak (something the library or a test started and nobody
  stops), and it fails the test that left it. The Home Assistant tests replace this fixture with a no-op
  (tests/ha/conftest.py): pytest-homeassistant-custom-component's own ``verify_cleanup`` checks them, with
  Home Assistant's own background work taken into account.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

# On a fresh machine (CI's clean clone) hypothesis builds its Unicode table the first time any test draws
# text, which takes a second or two; the too_slow health check would then fail whichever test draws first.
# Generation that is slow for a real reason still shows up as a slow test run.
settings.register_profile("sim7020", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sim7020")

#: Loop iterations given to tasks that were cancelled or told to stop during teardown before they count as
#: lingering (a cancelled task needs one to run its cancellation; a closed socket's handler one or two more).
SETTLE_ITERATIONS = 5


@pytest.fixture(autouse=True)
async def verify_no_lingering_tasks() -> AsyncIterator[None]:
    """Fail the test if a task or a timer of its event loop outlives it and its fixtures.

    Autouse fixtures are set up first, so this one is torn down last: after every other fixture of the test
    (emulators, modems, peers, bridges) has stopped what it started.
    """
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks(loop)
    yield
    for _ in range(SETTLE_ITERATIONS):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks(loop) - before if task is not current and not task.done()]
    timers = [handle for handle in getattr(loop, "_scheduled", []) if not handle.cancelled()]
    lines = [f"task still running: {_short(task)}" for task in tasks]
    lines += [f"timer still scheduled: {_short(handle)}" for handle in timers]
    for task in tasks:
        task.cancel()
    for handle in timers:
        handle.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if lines:
        pytest.fail("the test left work running:\n" + "\n".join(lines), pytrace=False)


def _short(thing: object) -> str:
    """A repr long enough to name the coroutine or callback (where it was created) and no longer."""
    text = repr(thing)
    return text if len(text) <= 300 else text[:297] + "..."
