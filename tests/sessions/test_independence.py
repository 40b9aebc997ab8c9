"""The recorder and the replayer sit on the modem's side of the wire: they never use the driver's code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sim7020_core.sessions

PACKAGE = Path(sim7020_core.sessions.__file__).parent
#: The driver: what the modem side must not share code with (CLI glue may use the error type and the version).
DRIVER = (
    "sim7020_core.at",
    "sim7020_core.modem",
    "sim7020_core.status",
    "sim7020_core.connection",
    "sim7020_core.link",
    "sim7020_core.plugins",
    "sim7020_core.psm",
    "sim7020_plugins",
    "sim7020_core.emulator",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against sim7020_core.sessions
                parent = ["sim7020_core", "sessions"][: 2 - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_driver_code_in_the_sessions_package(path: Path) -> None:
    bad = [name for name in _imports(path) if name.startswith(DRIVER)]
    assert bad == []
