"""What the bridge cannot heal by itself, said once: in the log, and in the ``problem`` field of each modem's
state topic.

Retry loops (the durable queue's storage, the broker connection) report here when something fails in a way
that needs an operator (a full disk, a refused password, a certificate the bridge cannot trust) and again
when it works; :class:`ProblemLog` logs a problem when it appears or changes and when it is gone, never on
every retry, and tells its listeners (the modem bridges republish their state).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

Listener = Callable[[], None]


class ProblemLog:
    """The current problems, each under a source name, for the whole bridge or for one modem."""

    def __init__(self) -> None:
        # (modem id or None for the whole bridge, source) -> text
        self._problems: dict[tuple[str | None, str], str] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` whenever a problem appears, changes or clears; returns the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def report(self, source: str, text: str | None, *, modem: str | None = None) -> None:
        """Set (``text``) or clear (None) the problem of ``source``; logs only when it changes."""
        key = (modem, source)
        previous = self._problems.get(key)
        if text == previous:
            return
        where = f"modem {modem}: " if modem is not None else ""
        if text is None:
            del self._problems[key]
            _LOGGER.warning("%s%s works again (was: %s)", where, source, previous)
        else:
            self._problems[key] = text
            _LOGGER.error("%sproblem: %s", where, text)
        for listener in list(self._listeners):
            listener()

    def summary(self, modem: str | None = None) -> str | None:
        """The problems of the whole bridge and of ``modem``, in one line (None when there are none)."""
        texts = [text for (owner, _), text in self._problems.items() if owner is None or owner == modem]
        return "; ".join(texts) or None
