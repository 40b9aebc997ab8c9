"""What makes the integration installable: one version everywhere, license, brand images, hacs.json."""

from __future__ import annotations

import json
import re
import struct
import tomllib
from pathlib import Path

import pytest
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION

import sim7020_core

ROOT = Path(__file__).parents[2]
COMPONENT = ROOT / "custom_components" / "sim7020"
MANIFEST = json.loads((COMPONENT / "manifest.json").read_text())


def test_one_version_everywhere() -> None:
    """The library's version (the one place it is written) is the manifest's version and its pin."""
    version = sim7020_core.__version__
    assert MANIFEST["version"] == version
    assert MANIFEST["requirements"] == [f"sim7020=={version}"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "sim7020_core/version.py"


def test_running_home_assistant_is_supported() -> None:
    """The HA these tests run on is at least the minimum hacs.json declares (so the minimum is tested)."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert AwesomeVersion(HA_VERSION) >= AwesomeVersion(hacs["homeassistant"])


def test_license_is_apache_2() -> None:
    """LICENSE holds the Apache License 2.0, as pyproject.toml declares."""
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height, _depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert colour_type == 6, f"{path.name} has no alpha channel (transparent background)"
    return width, height


@pytest.mark.parametrize(
    ("name", "size"),
    [("icon.png", 256), ("icon@2x.png", 512), ("dark_icon.png", 256), ("dark_icon@2x.png", 512)],
)
def test_brand_images(name: str, size: int) -> None:
    """The brand images HA 2026.3+ serves from brand/: square PNGs of the brands repository's sizes."""
    assert _png_size(COMPONENT / "brand" / name) == (size, size)


def test_usb_matchers_follow_home_assistant_rules() -> None:
    """vid and pid upper case, patterns lower case (HA refuses others); each names the chip's strings."""
    for matcher in MANIFEST["usb"]:
        assert re.fullmatch(r"[0-9A-F]{4}", matcher["vid"])
        assert re.fullmatch(r"[0-9A-F]{4}", matcher["pid"])
        assert matcher["description"] == matcher["description"].lower()
        assert set(matcher) == {"vid", "pid", "description"}
