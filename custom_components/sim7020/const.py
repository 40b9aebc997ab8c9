"""Constants of the SIM7020 integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "sim7020"

CONF_DEVICE: Final = "device"
CONF_BAUDRATE: Final = "baudrate"
#: Key of ``entry.data`` holding the network settings the user set from Home Assistant (PSM, eDRX, APN, bands,
#: operator, DNS servers), field names of :class:`sim7020_core.models.NetworkSettings` plus the APN's PDP type
#: and credentials; handed to the library at setup (``ModemOptions.network``). Changing it does not reload.
CONF_NETWORK: Final = "network"

#: Option stored by entries of config-entry minor version 1 (a user-set poll interval); the migration to minor
#: version 2 drops it, since the poll interval is now fixed (:data:`POLL_INTERVAL`).
CONF_POLL_INTERVAL: Final = "poll_interval"
CONF_PSM_HANDLING: Final = "psm_handling"
CONF_ALLOW_RAW_AT: Final = "allow_raw_at"
CONF_MQTT_TOPIC: Final = "mqtt_topic"
CONF_LISTEN_PORT: Final = "listen_port"

PSM_WAIT: Final = "wait"
PSM_FAIL: Final = "fail"
PSM_HANDLING_OPTIONS: Final = [PSM_WAIT, PSM_FAIL]

DEFAULT_BAUDRATE: Final = 115200
BAUDRATES: Final = [9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600]
#: Seconds between the library's reads of what the module cannot push (signal, attach and PDN state, address),
#: while it is awake; registration, PSM and reboots are reported by the module as they happen. Signal and
#: attach state of a stationary NB-IoT modem change over minutes, and every read keeps the UART busy.
POLL_INTERVAL: Final = 60.0
DEFAULT_PSM_HANDLING: Final = PSM_WAIT
DEFAULT_TRANSPORT: Final = "native"

#: Seconds allowed to open the port and identify the module (config flow probe and entry setup).
CONNECT_TIMEOUT: Final = 30.0
#: Seconds allowed for one status refresh.
REFRESH_TIMEOUT: Final = 20.0
#: Seconds allowed for a service call that talks to the module (DNS, open/send on a connection). Longer
#: than the library's own PSM wake timeout (30 s), so a sleeping module can wake within the call.
SERVICE_TIMEOUT: Final = 60.0
#: Default seconds ``sim7020.send`` waits for the reply when ``wait_response`` is set.
DEFAULT_RESPONSE_TIMEOUT: Final = 10.0
#: Seconds allowed for closing the modem and its connections on unload.
CLOSE_TIMEOUT: Final = 10.0
#: Seconds allowed for a reboot from the restart button.
REBOOT_TIMEOUT: Final = 60.0
#: Seconds allowed per ping probe (the whole ping gets count times this plus a margin).
PING_PROBE_TIMEOUT: Final = 10.0

EVENT_DATA_RECEIVED: Final = "sim7020_data_received"
#: Bus event fired when the module enters or leaves PSM (``type`` is ``psm_entered`` / ``psm_exited``).
EVENT_PSM: Final = "sim7020_psm"

TRIGGER_DATA_RECEIVED: Final = "data_received"
TRIGGER_PSM_ENTERED: Final = "psm_entered"
TRIGGER_PSM_EXITED: Final = "psm_exited"
TRIGGER_TYPES: Final = [TRIGGER_DATA_RECEIVED, TRIGGER_PSM_ENTERED, TRIGGER_PSM_EXITED]

SERVICE_SEND: Final = "send"
SERVICE_PING: Final = "ping"
SERVICE_DNS_LOOKUP: Final = "dns_lookup"
SERVICE_AT_COMMAND: Final = "at_command"
SERVICE_SET_APN: Final = "set_apn"
SERVICE_SET_BANDS: Final = "set_bands"
SERVICE_SET_OPERATOR: Final = "set_operator"
SERVICE_SET_DNS_SERVERS: Final = "set_dns_servers"

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_HOST: Final = "host"
ATTR_PORT: Final = "port"
ATTR_PROTOCOL: Final = "protocol"
ATTR_PAYLOAD: Final = "payload"
ATTR_PAYLOAD_HEX: Final = "payload_hex"
ATTR_ENCODING: Final = "encoding"
ATTR_TRANSPORT: Final = "transport"
ATTR_WAIT_RESPONSE: Final = "wait_response"
ATTR_TIMEOUT: Final = "timeout"
ATTR_COUNT: Final = "count"
ATTR_HOSTNAME: Final = "hostname"
ATTR_COMMAND: Final = "command"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_CLIENT_ID: Final = "client_id"
ATTR_APN: Final = "apn"
ATTR_USERNAME: Final = "username"
ATTR_PASSWORD: Final = "password"
ATTR_PDP_TYPE: Final = "pdp_type"
ATTR_BANDS: Final = "bands"
ATTR_OPERATOR: Final = "operator"
ATTR_SERVERS: Final = "servers"

PROTOCOLS: Final = ["udp", "tcp"]
#: PDP types of ``sim7020.set_apn`` (``AT*MCGDEFCONT``), as the library takes them; the first is the default.
PDP_TYPES: Final = ["IP", "IPV6", "IPV4V6", "Non-IP"]
