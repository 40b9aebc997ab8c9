"""The modem manager: :class:`Modem` (a façade, :mod:`.facade`) over its focused parts, and
:class:`ModemOptions`.

``from sim7020_core.modem import Modem, ModemOptions`` (also ``from sim7020_core import …``). The checks of
what may go into an AT command (values such as the APN, raw commands) are in :mod:`.checks`, for every front
end to use.
"""

from __future__ import annotations

from .checks import check_raw_command, raw_command_refusal
from .facade import Modem
from .options import ModemOptions, PsmPolicy, WakeCallback

__all__ = ["Modem", "ModemOptions", "PsmPolicy", "WakeCallback", "check_raw_command", "raw_command_refusal"]
