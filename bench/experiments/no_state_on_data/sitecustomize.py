"""Experiment (not the product): the bridge stops republishing its retained state JSON for ``data`` events.

Every datagram from a modem is a ``data`` ModemEvent, and ``ModemBridge._on_modem_event`` republishes the
whole state (``ModemStatus.as_dict`` + ``json.dumps`` + a retained QoS 1 PUBLISH) for each one, although a
datagram changes nothing in it. Run the benchmark with this directory first on ``PYTHONPATH`` to measure what
that costs (see bench/README.md, "Experiments")::

    PYTHONPATH=bench/experiments/no_state_on_data .venvs/py311/bin/python bench/bridge_bench.py \
        --systems bridge
"""

import sim7020_core.bridge.bridge as _bridge

_original = _bridge.ModemBridge._on_modem_event


def _on_modem_event(self, event):
    if event.kind == "data":
        return
    _original(self, event)


_bridge.ModemBridge._on_modem_event = _on_modem_event
