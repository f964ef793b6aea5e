"""`make demo`: the main job end to end on an embedded default.

Today: import the shared real cohort (when it sits beside the repository), validate it and
print its summary and data-quality warnings.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from crsml.adapters.daily import import_daily, summarise
from crsml.cohort import Cohort

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"


def main() -> int:
    con = Console(highlight=False, soft_wrap=True)
    if not REAL.exists():
        con.print(f"shared real cohort not found at {REAL}")
        return 1
    con.rule("1. import the shared real cohort (crsml import-daily)")
    cohort, report = import_daily(REAL)
    with tempfile.TemporaryDirectory() as tmp:
        cohort.save(Path(tmp) / "real")
        cohort = Cohort.load(Path(tmp) / "real")
    con.print(f"{len(report.warnings)} data-quality warnings, e.g.:")
    for p in report.warnings[:8]:
        con.print("  " + str(p), markup=False)
    con.print(json.dumps(summarise(cohort), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
