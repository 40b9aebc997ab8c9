"""The version of the sim7020 distribution, written in this one place.

pyproject.toml reads it through hatch, custom_components/sim7020/manifest.json repeats it, and a test checks
that they agree. A leaf module, so any layer may name the version without importing the public surface.
"""

__version__ = "0.1.0"
