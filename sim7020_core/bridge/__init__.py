"""The MQTT bridge (``sim7020 bridge``): see docs/bridge.md.

Modules: :mod:`.bridge` (``Bridge``, ``ModemBridge``), :mod:`.mqtt` (paho handed to asyncio),
:mod:`.queue` (sqlite durable queues), :mod:`.routes`, :mod:`.commands`, :mod:`.discovery`, :mod:`.demo`,
:mod:`.broker` (the demo's local broker: mosquitto or amqtt), :mod:`.cli`. Nothing is imported here, so
the ``sim7020`` command line stays quick to start.
"""
