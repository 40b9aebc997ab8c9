"""Named timeouts (seconds) and command priorities.

Every wait in the library is bounded by one of these constants, so tests can patch them
(``monkeypatch.setattr(const, "DEFAULT_TIMEOUT", 0.05)``). Code reads them at call time
(``const.X``), never copies them into default arguments, so a patch takes effect.

Keep this a flat list of module constants with a comment each. Other layers append their own
constants at the end, under a comment naming the layer.
"""

from __future__ import annotations

import enum


class Priority(enum.IntEnum):
    """Priority of an AT command in the engine's queue (lower value goes first)."""

    HIGH = 0  # watchdog, status polling, recovery
    NORMAL = 10  # ordinary commands
    LOW = 20  # bulk data (socket sends, manual reads)


# --- serial link -----------------------------------------------------------------------------
DEFAULT_BAUDRATE = 115200  # the SIM7020 default (AT+IPR); irrelevant for socket://
LINK_OPEN_TIMEOUT = 10.0  # opening a device, socket:// or rfc2217:// URL
LINK_CLOSE_TIMEOUT = 5.0  # flushing and closing the port
AUTOBAUD_RATES = (115200, 9600, 57600, 38400, 19200, 230400, 460800, 921600, 4800)  # tried in order
SYNC_ATTEMPT_TIMEOUT = 0.5  # one "AT" probe while syncing
SYNC_ATTEMPTS = 5  # "AT" probes per candidate rate (the module autobauds on the first few)
SET_BAUDRATE_SETTLE = 0.1  # pause after AT+IPR before talking at the new rate
LINK_READ_SIZE = 65536  # bytes per read from a device (pyserial-asyncio-fast's default is 1024)

# --- AT engine -------------------------------------------------------------------------------
DEFAULT_TIMEOUT = 5.0  # final result of an ordinary command
SHORT_TIMEOUT = 1.0  # AT, ATE0, identity queries (Kampi allows 1 s)
QUEUE_TIMEOUT = 330.0  # waiting for our turn behind other commands (outlasts the longest command)
PROMPT_TIMEOUT = 5.0  # the '>' prompt after CIPSEND / CSODSEND
STALE_ANSWER_GRACE = 0.5  # after a timeout, how long the next command waits for the late answer
MAX_LINE_LENGTH = 8192  # an unterminated line longer than this is dropped as garbage
MAX_PAYLOAD_LENGTH = 65536  # a binary-payload header announcing more than this is a garbage line
DATA_MODE_GUARD_TIME = 1.0  # silence before and after "+++" (application note 6.14.4)
ECHO_MEMORY = 8  # how many recently sent commands are remembered to recognise their echo

# --- per-command timeouts (public drivers: TinyGSM, Kampi, OneOS; sources in docs/at_notes.md) -
CFUN_TIMEOUT = 15.0  # AT+CFUN=0/1 (radio on/off)
REBOOT_TIMEOUT = 15.0  # AT+CFUN=1,1 until the module talks again
COPS_TIMEOUT = 300.0  # AT+COPS set form (network search)
CSOC_TIMEOUT = 60.0  # AT+CSOC (Kampi 60 s, OneOS 20 s)
CSOCON_TIMEOUT = 60.0  # AT+CSOCON (TCP connect)
CSOSEND_TIMEOUT = 60.0  # AT+CSOSEND / AT+CSODSEND
CSOSTATUS_TIMEOUT = 3.0  # AT+CSOSTATUS
CSOCL_TIMEOUT = 20.0  # AT+CSOCL
PDP_TIMEOUT = 60.0  # AT*MCGDEFCONT, AT+CGCONTRDP, AT+CGACT
CDNSGIP_TIMEOUT = 30.0  # OK plus the +CDNSGIP URC (TinyGSM 30 s, OneOS 20 s)
CIPPING_BASE_TIMEOUT = 5.0  # CIPPING: this plus count * per-ping timeout
CIPSTART_TIMEOUT = 75.0  # AT+CIPSTART: OK, then CONNECT OK / CONNECT FAIL
CIPSEND_TIMEOUT = 60.0  # AT+CIPSEND: SEND OK after the data (server ack in normal mode)
CIPCLOSE_TIMEOUT = 20.0  # AT+CIPCLOSE: CLOSE OK
CIPSHUT_TIMEOUT = 65.0  # AT+CIPSHUT: SHUT OK

# modem manager
MODEM_SYNC_ATTEMPTS = (
    10  # "AT" probes (SYNC_ATTEMPT_TIMEOUT each) before connect() gives up on a silent module
)
RECOVERY_SYNC_ATTEMPTS = 3  # "AT" probes of the first recovery step (resync) before resetting the module
BOOT_SYNC_ATTEMPTS = 30  # "AT" probes after AT+CFUN=1,1 while the module boots (~15 s)
SIM_BUSY_RETRY_DELAY = 1.0  # pause between retries of a SIM command answered +CME ERROR: 14 (SIM busy)
STATUS_TIMEOUT = 5.0  # one status query (CSQ, CEREG?, CGATT?, COPS?, CPSMS?, CENG?)
USER_COMMAND_TIMEOUT = 10.0  # default bound of Modem.command()
REGISTRATION_POLL_INTERVAL = 1.0  # AT+CEREG? period while waiting for registration (URCs end it sooner)
PSM_GRANT_TIMEOUT = 10.0  # the network's +CEREG grant after AT+CPSMS=1 (arrives as URCs, after the OK)
PSM_GRANT_SETTLE = 2.0  # after a grant report equal to the previous grant, wait this long for another one
CPIN_READY_TIMEOUT = 20.0  # "+CPIN: READY" after AT+CFUN=1 (TinyGSM waits 20 s; optional URC)
WATCHDOG_TIMEOUT = 2.0  # answer to the watchdog probe (AT+CMEE?) and to the reboot check
READY_WAIT_TIMEOUT = 30.0  # a command waits this long for a recovering/connecting modem to become ready
WAKE_CALLBACK_TIMEOUT = 10.0  # an async ModemOptions.wake callback
WAKE_PROBE_INTERVAL = 1.0  # while waking from PSM, poke the UART with AT this often
WAKE_PROBE_TIMEOUT = 0.5  # answer to one wake-up AT
WAKE_REGISTRATION_TIMEOUT = 30.0  # after a wake, data waits this long for registration (+CEREG: 1/5): real
# modules drop what is sent before (docs/emulator.md, "Power saving")
WAKE_EXIT_GRACE = 1.0  # "+CPIN: READY" out of the blue: how long "EXIT PSM" may follow (a wake) before the
# driver asks the module whether it rebooted
STALE_DATA_MODE_TIMEOUT = 1.0  # connect: "OK" to the "+++" that leaves a data mode a previous process left
UNRESPONSIVE_ATTEMPTS = 3  # failed recovery attempts in a row before the modem reports a problem
TRANSPORT_NOTIFY_TIMEOUT = 5.0  # a transport's on_modem_reset/on_psm/close
CLOSE_TIMEOUT = 5.0  # background tasks to finish after cancellation on close()
RECONNECT_MIN_DELAY = 1.0  # first backoff delay of ReconnectLogic
RECONNECT_MAX_DELAY = 60.0  # backoff cap of ReconnectLogic
RECONNECT_STOP_TIMEOUT = 5.0  # a running reconnect attempt to finish after cancellation

# --- persistent connections and servers (persistent.py) -------------------------------------
PERSISTENT_OPEN_TIMEOUT = 60.0  # opening a connection or a server (CSOC + CSOCON, CIPSTART …)
PERSISTENT_CLOSE_TIMEOUT = 10.0  # closing one (CSOCL, CIPCLOSE …)
PERSISTENT_RETRY_MIN = 0.5  # first backoff delay of a failed (re)open or delivery
PERSISTENT_RETRY_MAX = 30.0  # backoff cap of a failed (re)open or delivery

# --- data usage (modem/usage.py) --------------------------------------------------------------
USAGE_EVENT_INTERVAL = 1.0  # at most one UsageChanged event this often (coalesced)
USAGE_SAVE_INTERVAL = 5.0  # ModemOptions.usage_file is written at most this often while data flows
USAGE_FILE_TIMEOUT = 5.0  # reading or writing the usage file (in a worker thread)
