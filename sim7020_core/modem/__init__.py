"""The modem manager: :class:`Modem` (a façade, :mod:`.facade`) over its focused parts, and
:class:`ModemOptions`.

``from sim7020_core.modem import Modem, ModemOptions`` (also ``from sim7020_core import …``).
"""

from __future__ import annotations

from .facade import Modem
from .options import ModemOptions, PsmPolicy, WakeCallback
from .services import UNSAFE_COMMANDS, unsafe_reason

__all__ = ["UNSAFE_COMMANDS", "Modem", "ModemOptions", "PsmPolicy", "WakeCallback", "unsafe_reason"]
