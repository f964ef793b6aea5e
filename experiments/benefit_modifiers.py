"""What the benefit of tocilizumab now depends on, on the simulator: how much ranking each
source of information could buy.

The feature ceiling of ``experiments/tocilizumab_benefit.py`` is XGBoost fitted to the
simulator's expected benefit itself (never known in practice) on the training cohort's eligible
patients; its share of the oracle's gain on the test cohort is the most those inputs carry.
This script fits it with four sets of inputs and scores each on the test cohort's eligible
patients with grade >= 1 at L (where tocilizumab is given, the population inside the overlap
of a model without the centre) and on every eligible patient:

- the landmark features;
- the landmark features and the centre (``site``: one indicator per centre);
- the landmark features and the simulator's latent traits (IL-6 / IL-1 / IFN-gamma shares of
  inflammation and the strength of the myeloid loop), which no record holds;
- all three.

The comparison "now" against "not now" is a comparison with each centre's usual care after the
landmark, so a centre that gives tocilizumab early anyway gains little from a dose now and one
that waits for grade 3 gains much: the mean true benefit by centre is printed too.

    .venv/bin/python experiments/benefit_modifiers.py [--n 10000] [--landmarks 24 48 72]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import xgboost as xgb
from tocilizumab_benefit import (  # the experiment's own cohorts and scoring
    TEST_SEED,
    TRAIN_SEED,
)

from crsml.evaluation import feature_ceiling, share_of_oracle
from crsml.simulation import simulate
from crsml.training import BenefitSettings, benefit_data

LATENT = ["il6_share", "il1_share", "ifng_share", "myeloid_gain"]


def inputs(n: int, seed: int, L: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Landmark features (with the centre's indicators), latent traits and true benefit of the eligible."""
    c = simulate(n, seed=seed, truth_draws=16, profile="mixed_practice", landmarks=(L,), expected_benefit=True)
    _, X, _, _ = benefit_data(c, BenefitSettings(landmark_h=L, extra_patient_columns=("site",)))
    truth = c.truth_at(L).loc[X.index]
    site = [x for x in X.columns if x.startswith("extra_site=")]
    return X.drop(columns=site), X[site], truth[LATENT], truth["benefit_days"].to_numpy(dtype=float)


def ceiling(X: pd.DataFrame, tau: np.ndarray, seed: int = 0) -> xgb.XGBRegressor:
    """The experiment's feature ceiling (same settings as ``tocilizumab_benefit.feature_ceiling``)."""
    return feature_ceiling(X, tau, seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--landmarks", type=float, nargs="+", default=[24, 48, 72])
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    rows, by_site = [], []
    for L in args.landmarks:
        Xa, Sa, La, ta = inputs(args.n, TRAIN_SEED, L)
        Xb, Sb, Lb, tb = inputs(args.n, TEST_SEED, L)
        sets = {
            "landmark features": ([Xa], [Xb]),
            "+ centre": ([Xa, Sa], [Xb, Sb]),
            "+ latent traits": ([Xa, La], [Xb, Lb]),
            "+ centre + latent traits": ([Xa, Sa, La], [Xb, Sb, Lb]),
        }
        ok = ~np.isnan(tb)
        graded = ok & (Xb["grade_current"].to_numpy() >= 1)
        for name, (a, b) in sets.items():
            pred = ceiling(pd.concat(a, axis=1), ta).predict(pd.concat(b, axis=1))
            row = {"landmark_h": L, "inputs": name}
            for population, mask in (("grade >= 1", graded), ("all eligible", ok)):
                row[f"top30 share, {population}"] = share_of_oracle(pred[mask], tb[mask], 0.3, np.random.default_rng(0))
            rows.append(row)
        centre = Sb.idxmax(axis=1).str.removeprefix("extra_site=").to_numpy()
        by_site.append(
            pd.DataFrame({"landmark_h": L, "centre": centre[graded], "benefit": tb[graded]})
            .groupby(["landmark_h", "centre"])["benefit"]
            .agg(["size", "mean"])
        )
    print("share of the oracle's gain of treating the top 30% by the feature ceiling, test cohort:")
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print("\ntrue mean benefit (severe-CRS days spared) by centre, eligible with grade >= 1 at L:")
    print(pd.concat(by_site).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
