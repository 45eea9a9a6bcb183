"""Commit a run's report as a reference report: `python tools/reference_report.py RUN REPORT OUT`.

Copies the report (index.html, report.md, figures/) and the run's config.yaml into OUT, and writes OUT/numbers.json
(`fakebench.report.reference.key_numbers`), which tests/test_reference_report.py checks by running the config
again. For the demo: `fakebench demo -o demo_out` then
`python tools/reference_report.py demo_out/run demo_out/report reports/demo`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from fakebench.report.reference import key_numbers


def main(run: Path, report: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(report, out)
    shutil.copy(run / "config.yaml", out / "config.yaml")
    (out / "numbers.json").write_text(json.dumps(key_numbers(run), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
