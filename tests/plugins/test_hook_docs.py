"""Meta-tests (datasette style): every hook is documented with its signature, and every hook has a test."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from sim7020_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugin_hooks.md"
HEADING = re.compile(r"^## (sim7020_\w+)\((.*)\)\s*$", re.MULTILINE)


def _hookspecs() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(func).parameters)
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("sim7020_")
    }


def _documented() -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    return {m[1]: [a.strip() for a in m[2].split(",") if a.strip()] for m in HEADING.finditer(text)}


def test_there_are_hooks():
    assert len(_hookspecs()) >= 6


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_hook_is_documented_with_its_signature(hook):
    documented = _documented()
    assert hook in documented, f"{hook} has no '## {hook}(...)' heading in docs/plugin_hooks.md"
    assert documented[hook] == _hookspecs()[hook]


def test_docs_describe_no_hook_that_does_not_exist():
    assert set(_documented()) <= set(_hookspecs())


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_hook_has_a_docstring_with_params(hook):
    func = getattr(hookspecs, hook)
    doc = inspect.getdoc(func) or ""
    assert doc, hook
    for param in _hookspecs()[hook]:
        assert f":param {param}:" in doc, f"{hook} does not document {param}"


FIRSTRESULT = {"sim7020_wake_modem"}
HISTORIC = {"sim7020_register_transports", "sim7020_register_codecs"}


def test_flags_are_what_the_docs_say():
    text = DOC.read_text(encoding="utf-8")
    for hook in _hookspecs():
        opts = getattr(hookspecs, hook).sim7020_spec
        assert bool(opts["firstresult"]) == (hook in FIRSTRESULT), hook
        assert bool(opts["historic"]) == (hook in HISTORIC), hook
        section = text.split(f"## {hook}(", 1)[1].split("\n## ", 1)[0]
        assert ("`firstresult`" in section) == (hook in FIRSTRESULT), hook
        assert ("`historic`" in section) == (hook in HISTORIC), hook


def _test_function_names() -> set[str]:
    names: set[str] = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {
            node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    return names


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_every_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in _test_function_names(), f"no test named test_hook_{hook} in tests/plugins"
