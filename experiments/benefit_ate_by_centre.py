"""Where the average benefit's lean sits: the AIPW estimate inside Crump's bound by centre, and
whether a latent effect modifier is balanced after weighting (a confounder the records hide).

For each replicate cohort of ``mixed_practice`` (seeds 5000 + r, as
``experiments/tocilizumab_benefit.py``) one split is cross-fitted with the nuisance settings
tuned on the training cohort; per centre it prints the patients and treated inside the bound,
the mean pseudo-outcome (the estimate's share from that centre), the truth of the same patients
and the bias; then, per centre, the inverse-probability-weighted means of the simulator's latent
IL-6 share of inflammation and myeloid gain (``truth`` columns, never features) among the
treated and the untreated. Balanced latent traits point at the outcome models' error, not at
hidden confounding.

    .venv/bin/python experiments/benefit_ate_by_centre.py [--landmark-h 48] [--replicates 20]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import tocilizumab_benefit as tb  # the experiment's own truth and seeds
from benefit_ate_trim import (  # the same replicate cohorts, cross-fitting and tuned settings
    crossfitted,
    nuisance_settings,
    replicate,
)

from crsml.models import crump_bound, overlap


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landmark-h", type=float, default=48.0)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--trials", type=int, default=6)
    args = ap.parse_args()
    L = tb.L = args.landmark_h
    params = nuisance_settings(L, args.trials)
    parts = []
    for r in range(args.replicates):
        c = replicate(r, L)
        X, Tr, Yr, nu = crossfitted(c, L, ("site",), params, r)
        inside = overlap(nu.e, crump_bound(nu.e))
        pid = X.index.get_level_values("patient_id")
        latent = c.truth_at(L).reindex(pid)
        d = pd.DataFrame(
            {
                "replicate": r,
                "centre": c.patients.set_index("patient_id")["site"].reindex(pid).to_numpy(),
                "treated": Tr,
                "e": nu.e,
                "phi": nu.pseudo_outcome(Tr, Yr),
                "truth": np.asarray(tb.true_effect(c, X.index)),
                "il6_share": latent["il6_share"].to_numpy(),
                "myeloid_gain": latent["myeloid_gain"].to_numpy(),
            }
        )
        parts.append(d[inside])
        print(f"replicate {r + 1} of {args.replicates}", file=sys.stderr, flush=True)
    d = pd.concat(parts, ignore_index=True)
    per = (
        d.groupby(["replicate", "centre"])
        .agg(patients=("phi", "size"), treated=("treated", "sum"), estimate=("phi", "mean"), truth=("truth", "mean"))
        .reset_index()
    )
    per["bias"] = per["estimate"] - per["truth"]
    print(
        f"L = {L:g} h, {args.replicates} replicate cohorts of 5,000, inside Crump's bound (means over the cohorts "
        "where the centre has patients inside):"
    )
    print(per.groupby("centre")[["patients", "treated", "estimate", "truth", "bias"]].mean().round(3).to_string())
    d["w"] = np.where(d["treated"] == 1, 1 / d["e"], 1 / (1 - d["e"]))
    rows = {}
    for centre, x in d.groupby("centre"):
        t, u = x[x["treated"] == 1], x[x["treated"] == 0]
        rows[centre] = {
            f"{k} {arm}": np.average(g[k], weights=g["w"]) if len(g) else np.nan
            for k in ("il6_share", "myeloid_gain")
            for arm, g in (("treated", t), ("untreated", u))
        }
    print("latent traits after inverse-probability weighting (never features):")
    print(pd.DataFrame(rows).T.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
