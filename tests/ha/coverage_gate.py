"""Hold each module of the integration to the coverage the quality scale asks for (run by scripts/test).

    python tests/ha/coverage_gate.py [.coverage]

``config-flow-test-coverage`` asks for full coverage of config_flow.py, ``test-coverage`` for above 95 % of
every module (https://developers.home-assistant.io/docs/core/integration-quality-scale/rules/). Coverage's
own ``fail_under`` only sees the total, which can hide one weak module behind many full ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

RCFILE = Path(__file__).with_name("coveragerc")
#: Modules that must be fully covered; every other module must be above OTHERS.
FULL = {"config_flow.py"}
OTHERS = 95.0


def main(data_file: str = ".coverage") -> int:
    """Print each module's figure; return 1 when one falls short."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "coverage",
                "json",
                "-q",
                f"--rcfile={RCFILE}",
                f"--data-file={data_file}",
                "-o",
                str(report),
            ],
            check=False,
        )
        files = json.loads(report.read_text())["files"]
    failed = False
    for name, data in sorted(files.items()):
        percent = data["summary"]["percent_covered"]
        full = Path(name).name in FULL
        short = percent < 100.0 if full else percent <= OTHERS
        failed |= short
        print(f"{'FAIL' if short else 'ok  '} {percent:6.2f} % {name} (needs {'100' if full else '> 95'} %)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
