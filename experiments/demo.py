"""`make demo`: the main job end to end on an embedded default.

1. simulate a cohort (2,000 patients, seed 1) with known truth, write and validate it;
2. build landmark features at 24, 48 and 72 h and report eligibility;
3. import the shared real cohort when it sits beside the repository, validate it and print its
   summary and data-quality warnings.
Outputs go to out/demo/ (ignored by git).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from crsml.adapters.daily import import_daily, summarise
from crsml.cohort import Cohort
from crsml.features import LandmarkFeatures
from crsml.grading import crs_episodes
from crsml.simulate import simulate

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"
OUT = REPO / "out" / "demo"


def main() -> int:
    con = Console(highlight=False, soft_wrap=True)
    con.rule("1. simulate a cohort (crsml simulate --n 2000 --seed 1)")
    with con.status("simulating 2,000 patients"):
        sim = simulate(2000, seed=1)
        sim.save(OUT / "sim")
    sim, report = Cohort.load_with_report(OUT / "sim")
    ep = crs_episodes(sim.crs)
    con.print(f"wrote {OUT / 'sim'}: valid ({len(report.errors)} errors, {len(report.warnings)} warnings); "
              f"{len(sim.patients):,} patients, {len(sim.measurements):,} measurements, "
              f"{len(sim.vitals):,} vital-sign rows; CRS any grade {ep['max_grade'].ge(1).sum() / len(sim.patients):.0%}, "
              f"grade >= 3 {ep['max_grade'].ge(3).sum() / len(sim.patients):.0%}")

    con.rule("2. landmark features (crsml features --landmark-h 24 --landmark-h 48 --landmark-h 72)")
    fb = LandmarkFeatures(landmark_h=[24, 48, 72]).fit(sim)
    X, elig = fb.build(sim)
    counts = elig.groupby("landmark_h")["eligible"].agg(["sum", "size"])
    for L, row in counts.iterrows():
        con.print(f"  L = {L:g} h: {row['sum']:,} of {row['size']:,} patients eligible; "
                  f"the others are reported with their reason")
    con.print(f"  {X.shape[1]} features per patient; dictionary in docs/features.md")

    con.rule("3. the shared real cohort (crsml import-daily)")
    if not REAL.exists():
        con.print(f"shared real cohort not found at {REAL}; skipped")
        return 0
    real, report = import_daily(REAL)
    real.save(OUT / "real")
    real = Cohort.load(OUT / "real")
    con.print(f"{len(report.warnings)} data-quality warnings, e.g.:")
    for p in report.warnings[:6]:
        con.print("  " + str(p), markup=False)
    con.print(json.dumps(summarise(real), indent=2))
    con.rule(f"done: cohorts and features under {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
