"""Payload codecs: how the bytes of a connection become a publishable value and back.

One vocabulary for every front end (the bridge's ``encoding:``, ``sim7020 send --encoding``, the Home
Assistant ``sim7020.send`` action): the built-in codecs are

- ``raw``: bytes unchanged; text is sent as UTF-8;
- ``hex``: lower-case hex text (decoding ignores whitespace and accepts either case);
- ``base64``: standard base64 (RFC 4648), strict about the alphabet and padding;
- ``json``: JSON text carried as UTF-8, checked to be JSON both ways.

Plugins add codecs with the ``sim7020_register_codecs`` hook; this module is itself such a plugin (entry point
``codecs`` of the ``sim7020.plugins`` group), so the built-ins are found the way a third party's are. A front
end looks a codec up by name with :meth:`sim7020_core.plugins.PluginManager.codec`, which also accepts the
older spellings in :data:`CODEC_ALIASES` (``text`` for ``raw``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from .exceptions import PayloadError
from .markers import hookimpl


@runtime_checkable
class Codec(Protocol):
    """Turns connection bytes into a publishable value and back (MQTT payloads, HA action fields)."""

    name: str

    def encode(self, data: bytes) -> str | bytes:
        """Represent received bytes (raises PayloadError when the bytes cannot be represented)."""
        ...

    def decode(self, value: str | bytes) -> bytes:
        """Turn a user-supplied value into the bytes to send (raises PayloadError naming what is wrong)."""
        ...


def _as_text(value: str | bytes, codec: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{codec} payload must be ASCII text: {exc}") from None
    raise PayloadError(f"{codec} payload must be str or bytes, not {type(value).__name__}")


class RawCodec:
    """Bytes unchanged; text is sent as UTF-8."""

    name = "raw"

    def encode(self, data: bytes) -> bytes:
        return bytes(data)

    def decode(self, value: str | bytes) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise PayloadError(f"raw payload must be str or bytes, not {type(value).__name__}")


class HexCodec:
    """Lower-case hex text; decoding ignores whitespace and accepts either case."""

    name = "hex"

    def encode(self, data: bytes) -> str:
        return bytes(data).hex()

    def decode(self, value: str | bytes) -> bytes:
        text = "".join(_as_text(value, "hex").split())
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise PayloadError(f"payload is not valid hex ({exc}): {text[:40]!r}") from None


class Base64Codec:
    """Standard base64 (RFC 4648) text; decoding is strict about the alphabet and padding."""

    name = "base64"

    def encode(self, data: bytes) -> str:
        return base64.b64encode(bytes(data)).decode("ascii")

    def decode(self, value: str | bytes) -> bytes:
        text = "".join(_as_text(value, "base64").split())
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"payload is not valid base64 ({exc}): {text[:40]!r}") from None


class JsonCodec:
    """JSON text carried as UTF-8; both directions check the payload really is JSON."""

    name = "json"

    def encode(self, data: bytes) -> str:
        try:
            text = bytes(data).decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"received payload is not JSON ({exc}): {bytes(data)[:40]!r}") from None
        return text

    def decode(self, value: object) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PayloadError(f"JSON payload is not UTF-8: {exc}") from None
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError as exc:
                raise PayloadError(f"payload is not JSON ({exc}): {value[:40]!r}") from None
            return value.encode("utf-8")
        try:  # an already parsed value (dict, list, number …), e.g. from a HA action call
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"payload cannot be written as JSON: {exc}") from None


#: The built-in codecs by name.
BUILTIN_CODECS: Mapping[str, Codec] = {
    c.name: c for c in (RawCodec(), HexCodec(), Base64Codec(), JsonCodec())
}

#: Older spellings accepted where users' files or automations already use them, and the codec each stands
#: for: ``text`` was the Home Assistant ``sim7020.send`` action's name for ``raw`` (UTF-8 text as bytes).
CODEC_ALIASES: Mapping[str, str] = {"text": "raw"}


@hookimpl
def sim7020_register_codecs() -> Mapping[str, Codec]:
    """The built-in codecs: raw, hex, base64, json."""
    return BUILTIN_CODECS


__all__ = [
    "BUILTIN_CODECS",
    "CODEC_ALIASES",
    "Base64Codec",
    "Codec",
    "HexCodec",
    "JsonCodec",
    "RawCodec",
    "sim7020_register_codecs",
]
