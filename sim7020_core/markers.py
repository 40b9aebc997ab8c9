"""The pluggy markers of sim7020 (project name ``sim7020``): a leaf, so that every module can mark hooks.

Plugins mark their hook implementations with :data:`hookimpl` (also exported as ``sim7020_core.hookimpl``
and ``sim7020_core.hookspecs.hookimpl``). The specifications live in :mod:`sim7020_core.hookspecs`; the
markers are kept apart so that a module the specifications refer to (the codecs, for instance) can itself be
a plugin without an import cycle.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

#: The pluggy project name (also the prefix of every hook: ``sim7020_``).
PROJECT_NAME = "sim7020"
#: Marker for hook specifications (used by :mod:`sim7020_core.hookspecs` only).
hookspec = HookspecMarker(PROJECT_NAME)
#: Marker plugins use for their hook implementations.
hookimpl = HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
