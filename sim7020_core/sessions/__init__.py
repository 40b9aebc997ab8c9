"""Record real modem sessions and replay them: ``sim7020 record`` and ``sim7020 replay``.

- :mod:`.transcript`: the transcript format (timestamped, direction-marked, byte-exact text, versioned);
- :mod:`.recorder`: a transparent proxy between any client and a real modem that writes a transcript;
- :mod:`.redact`: IMEI/IMSI/ICCID/IP addresses replaced by stable fake values in the transcript only;
- :mod:`.replayer`: serves a transcript as a modem over TCP or a pty;
- :mod:`.ports`: the client side of both (TCP server, pseudo-terminal).

Like the emulator, this package never imports the driver (``at/``, ``modem.py``, ``connection.py``, the
plugins): the recorder and the replayer sit on the modem's side of the wire and know only its bytes. Each
module says in its docstring why no existing library does its job. Contributing a recorded session:
CONTRIBUTING.md.
"""

from __future__ import annotations

from .ports import PtyPort, TcpPort
from .recorder import Recorder, TranscriptFile
from .redact import Redactor
from .replayer import Replayer, build_script
from .transcript import Event, Record, Session, SessionError, TranscriptError, dumps, load, loads

__all__ = [
    "Event",
    "PtyPort",
    "Record",
    "Recorder",
    "Redactor",
    "Replayer",
    "Session",
    "SessionError",
    "TcpPort",
    "TranscriptError",
    "TranscriptFile",
    "build_script",
    "dumps",
    "load",
    "loads",
]
