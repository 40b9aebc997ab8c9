"""Settings shared by the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# On a fresh machine (CI's clean clone) hypothesis builds its Unicode table the first time any test draws
# text, which takes a second or two; the too_slow health check would then fail whichever test draws first.
# Generation that is slow for a real reason still shows up as a slow test run.
settings.register_profile("sim7020", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sim7020")
