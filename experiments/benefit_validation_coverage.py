"""Does the validation without the truth tell the truth? BLP and RATE on replicate simulated cohorts.

    .venv/bin/python experiments/benefit_validation_coverage.py [--replicates 20] [--n 2000]
        [--profiles mixed_practice costim_modifier fever_practice no_effect] [--landmarks 24 48 72]

For each simulator profile and landmark, two priorities are fitted once on a separate training
cohort: ranking by risk (XGBoost classifier of progression to grade >= 3 among patients not treated
now) and a DR-learner (XGBoost regressor fitted to cross-fitted doubly robust pseudo-outcomes). On
each of ``--replicates`` fresh cohorts of the same profile the nuisances are cross-fitted, and the
BLP ``beta2`` and the AUTOC of each priority are estimated from the doubly robust scores of the
patients inside Crump's propensity bound, with their 95% intervals, as ``crsml`` reports them. The
same quantities computed from the simulator's true benefit (the expected severe-CRS days spared
given the patient's whole state, ``benefit_days``) of the same patients are the truth: the counts
say how often each interval contains it (target: at least 18 of 20). On ``no_effect`` (every benefit
0) the count of ``beta2 > 0`` rejections at 5% is the test's false-positive count (target: at most 2
of 20).

Nuisance settings are fixed (no tuning), so that the replicate-to-replicate spread is the
sampling error the intervals claim to carry. Prints one table; writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from crsml.models import blp, crossfit, crump_bound, overlap, rate
from crsml.simulation import simulate
from crsml.training import BenefitSettings, benefit_data

PARAMS = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8, "n_jobs": 2}
EXTRA = ("site",)
TRIM = 0.01


def dr_scores(X: np.ndarray, T: np.ndarray, Y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted AIPW pseudo-outcomes of the benefit and the patients inside Crump's bound."""
    nu = crossfit(X, T, Y, PARAMS | {"random_state": seed}, PARAMS | {"random_state": seed}, folds=3, seed=seed)
    region = overlap(nu.e, crump_bound(nu.e, TRIM))
    return nu.pseudo_outcome(T, Y, TRIM), region


def data(profile: str, n: int, seed: int, landmark: float, truth: bool):
    c = simulate(n, seed=seed, profile=profile, truth_draws=8 if truth else 0, expected_benefit=truth)
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=landmark, extra_patient_columns=EXTRA))
    Xa = X.to_numpy(dtype=np.float32)
    T = trial["treated"].to_numpy(dtype=int)
    Y = trial["severe_days"].to_numpy(dtype=float)
    tau = None
    if truth:
        ids = X.index.get_level_values("patient_id") if "patient_id" in X.index.names else X.index
        tau = c.truth_at(landmark).loc[ids, "benefit_days"].to_numpy(dtype=float)
    return Xa, T, Y, tau


def priorities(profile: str, n: int, landmark: float, seed: int) -> dict:
    """Risk ranking and a DR-learner, fitted on a training cohort of their own."""
    X, T, Y, _ = data(profile, n, seed, landmark, truth=False)
    risk = xgb.XGBClassifier(**PARAMS, random_state=seed).fit(X[T == 0], (Y[T == 0] > 0).astype(int))
    phi, _ = dr_scores(X, T, Y, seed)
    phi = np.clip(phi, *np.quantile(phi, [0.01, 0.99]))  # a learner's target, not an estimate: tails clipped
    dr = xgb.XGBRegressor(**PARAMS, random_state=seed).fit(X, phi)
    return {"risk": lambda Z: risk.predict_proba(Z)[:, 1], "dr_learner": dr.predict}


def true_beta2(tau: np.ndarray, s: np.ndarray) -> float:
    c = s - s.mean()
    return float((c * (tau - tau.mean())).sum() / (c * c).sum()) if (c * c).sum() > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument(
        "--profiles", nargs="+", default=["mixed_practice", "costim_modifier", "fever_practice", "no_effect"]
    )
    ap.add_argument("--landmarks", nargs="+", type=float, default=[24.0, 48.0, 72.0])
    ap.add_argument("--out", type=Path, default=Path("experiments/output/benefit_validation_coverage.csv"))
    args = ap.parse_args()
    rows = []
    t0 = time.time()
    for profile in args.profiles:
        pri = {L: priorities(profile, args.n, L, seed=7) for L in args.landmarks}
        for r in range(args.replicates):
            c = simulate(args.n, seed=1000 + r, profile=profile, truth_draws=8, expected_benefit=True)
            for L in args.landmarks:
                _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L, extra_patient_columns=EXTRA))
                Xa = X.to_numpy(dtype=np.float32)
                T, Y = trial["treated"].to_numpy(dtype=int), trial["severe_days"].to_numpy(dtype=float)
                ids = X.index.get_level_values("patient_id") if "patient_id" in X.index.names else X.index
                tau = c.truth_at(L).loc[ids, "benefit_days"].to_numpy(dtype=float)
                phi, region = dr_scores(Xa, T, Y, seed=r)
                for name, f in pri[L].items():
                    s = f(Xa)[region]
                    g, t = phi[region], tau[region]
                    b = blp(g, s)
                    ra = rate(g, s, seed=r, n_boot=300, grid=np.array([1.0]))
                    tb, ta = true_beta2(t, s), float(rate(t, s, n_boot=2, grid=np.array([1.0]))["autoc"])
                    rows.append(
                        {
                            "profile": profile,
                            "landmark_h": L,
                            "priority": name,
                            "replicate": r,
                            "n": int(region.sum()),
                            "treated": int(T[region].sum()),
                            "beta2": b["beta2"],
                            "beta2_true": tb,
                            "beta2_covered": b["beta2_low"] <= tb <= b["beta2_high"],
                            "beta2_rejects_0": b["p_beta2"] < 0.05,
                            "autoc": ra["autoc"],
                            "autoc_true": ta,
                            "autoc_covered": ra["autoc_low"] <= ta <= ra["autoc_high"],
                        }
                    )
            print(f"{profile} replicate {r + 1}/{args.replicates} ({time.time() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    table = df.groupby(["profile", "landmark_h", "priority"]).agg(
        replicates=("replicate", "size"),
        n_mean=("n", "mean"),
        treated_mean=("treated", "mean"),
        beta2_true_mean=("beta2_true", "mean"),
        beta2_covered=("beta2_covered", "sum"),
        beta2_rejects_0=("beta2_rejects_0", "sum"),
        autoc_true_mean=("autoc_true", "mean"),
        autoc_covered=("autoc_covered", "sum"),
    )
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.round(3).to_string())
    print(f"rows: {args.out}; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
