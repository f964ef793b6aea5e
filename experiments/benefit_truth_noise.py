"""How much of the oracle's gain could a perfect model show, given the Monte Carlo truth?

``experiments/tocilizumab_benefit.py`` judges rankings against ``benefit_days``: the mean over
16 paired simulated futures of the severe-CRS days tocilizumab now would spare. That truth has
Monte Carlo error, and the oracle it defines ranks patients by the truth *and its error*, then
is scored on the same numbers, so its gain is inflated and every share of it is deflated.

This script measures that on the test cohort of the benefit experiment (profile
``mixed_practice``, seed 202): the same patients' truth is redrawn from independent futures
(``simulate(..., truth_stream=1)``, ``--ref-draws`` of them), and a ranking by that independent
truth, which knows each patient's expected benefit up to a smaller Monte Carlo error, is scored
against the experiment's 16-draw oracle. Its share of the oracle's gain is about the most any
model can show in that experiment's tables.

    .venv/bin/python experiments/benefit_truth_noise.py [--n 10000] [--landmarks 24 48 72] [--ref-draws 64]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from tocilizumab_benefit import (  # the experiment's own scoring
    FRACTIONS,
    TEST_SEED,
)

from crsml.evaluation import share_of_oracle
from crsml.simulation import simulate
from crsml.tasks import TocilizumabBenefit
from crsml.training import BenefitSettings, benefit_data

TASK = TocilizumabBenefit()  # its eligibility: alive, not severe, not given tocilizumab before L


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--landmarks", type=float, nargs="+", default=[24, 48, 72])
    ap.add_argument("--draws", type=int, default=16, help="futures behind the experiment's truth")
    ap.add_argument("--ref-draws", type=int, default=64, help="futures behind the independent truth")
    args = ap.parse_args()
    rng = np.random.default_rng(0)  # ties broken at random, as in the experiment
    rows = []
    for L in args.landmarks:
        kw = dict(profile="mixed_practice", landmarks=(L,), expected_benefit=True)
        a = simulate(args.n, seed=TEST_SEED, truth_draws=args.draws, **kw).truth_at(L)["benefit_days"]
        ref_cohort = simulate(args.n, seed=TEST_SEED, truth_draws=args.ref_draws, truth_stream=1, **kw)
        b = ref_cohort.truth_at(L)["benefit_days"]
        # the current grade as the benefit model's features give it
        _, X, _, _ = benefit_data(ref_cohort, BenefitSettings(landmark_h=L))
        grade = X["grade_current"].reindex(a.index).fillna(0)
        eligible = TASK.eligibility(ref_cohort, L).set_index("patient_id")["eligible"].reindex(a.index)
        ok = eligible.fillna(False).astype(bool) & a.notna() & b.notna()
        for population, mask in (("all eligible", ok), ("eligible, grade >= 1 at L", ok & (grade >= 1))):
            ta, tb = a[mask].to_numpy(), b[mask].to_numpy()
            # var(a - b) = s2 / draws + s2 / ref_draws, with s2 the variance of one paired future
            s2 = np.var(ta - tb) / (1 / args.draws + 1 / args.ref_draws)
            noise = s2 / args.draws
            row = {
                "landmark_h": L,
                "population": population,
                "patients": int(mask.sum()),
                "mean benefit (days)": ta.mean(),
                "var of the truth": np.var(ta),
                "of it Monte Carlo": noise / np.var(ta),
            }
            for f in FRACTIONS:
                row[f"top {int(f * 100)}%: perfect model's share"] = share_of_oracle(tb, ta, f, rng)
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    print(
        f"\nperfect model: ranks by the truth redrawn from {args.ref_draws} independent futures; scored, as in "
        f"experiments/tocilizumab_benefit.py, against the {args.draws}-future truth and its oracle"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
