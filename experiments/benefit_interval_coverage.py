"""The shipped benefit against the simulator's truth: interval coverage by basis and decile, and ranking.

    .venv/bin/python experiments/benefit_interval_coverage.py [--profiles mixed_practice ...]
        [--landmarks 48] [--n-train 2000 ...] [--n-test 2000] [--n-ceiling 10000] [--trials 2]

For each profile and landmark: ``crsml.train`` of ``tocilizumab_benefit`` (centre a feature) on a
training cohort; on a test cohort of the same profile, every eligible patient's ``benefit``,
``benefit_low``/``benefit_high`` and ``benefit_basis``. Their truth:

- the **feature-level benefit**, which the intervals are about (the average benefit of patients
  with the same features), estimated by the feature ceiling: XGBoost fitted to the simulator's
  expected benefit of 70% of a third cohort of the same profile (``--n-ceiling`` patients, seed
  303; ``crsml.evaluation.feature_ceiling``), recalibrated by isotonic regression of the expected
  benefit on its prediction in the other 30%. Without the recalibration the squared-error ceiling
  predicted -0.05 to -0.01 days in its three lowest deciles, where the mean truth is 0.000 to 0.002
  (10,000 patients, mixed_practice, 48 h), which no interval of a benefit >= 0 covers;
- the patient's expected benefit given the whole simulated state (``benefit_days``), for ranking.

Prints the coverage of the interval of the feature-level benefit overall, by basis and by decile of
predicted benefit (target at least 90%), the median width, and the share of the oracle's gain of
treating the top 30% by the shipped benefit, by risk and by the ceiling (random 0, oracle 1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from crsml import train
from crsml.evaluation import coverage, feature_ceiling, uplift_table
from crsml.simulation import simulate
from crsml.training import BenefitSettings

EXTRA = ("site",)


def eligible_rows(model, cohort, landmark: float):
    X, base = model.features.build(cohort)
    X = X.droplevel("landmark_h")
    elig = model.task.eligibility(cohort, landmark, base=base).set_index("patient_id").reindex(X.index)
    return X[elig["eligible"].to_numpy(dtype=bool)][model.feature_names]


class CalibratedCeiling:
    """The feature ceiling fitted to 70% of the rows, recalibrated by isotonic regression on the rest."""

    def __init__(self, X: pd.DataFrame, target: np.ndarray) -> None:
        fit = np.random.default_rng(0).random(len(X)) < 0.7
        self.ceiling = feature_ceiling(X[fit], target[fit], 0)
        self.iso = IsotonicRegression(out_of_bounds="clip").fit(self.ceiling.predict(X[~fit]), target[~fit])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.iso.predict(self.ceiling.predict(X))


def one(profile: str, landmark: float, n_train: int, args, big) -> tuple[pd.DataFrame, dict]:
    tr = simulate(n_train, seed=301, profile=profile, truth_draws=8, expected_benefit=True)
    te = simulate(args.n_test, seed=302, profile=profile, truth_draws=8, expected_benefit=True)
    s = BenefitSettings(landmark_h=landmark, trials=args.trials, seed=0, extra_patient_columns=EXTRA)
    result = train(tr, "tocilizumab_benefit", landmark, settings=s, log=lambda *a: None, progress=False)
    model = result.model
    Xc = eligible_rows(model, big, landmark)
    ceiling = CalibratedCeiling(Xc, big.truth_at(landmark).loc[Xc.index, "benefit_days"].to_numpy(float))
    X = eligible_rows(model, te, landmark)
    pred = model.estimator.predict(X)
    given = (pred["benefit_basis"] != "").to_numpy()
    X, pred = X[given], pred[given]
    level = ceiling.predict(X)
    tau = te.truth_at(landmark).loc[X.index, "benefit_days"].to_numpy(float)
    lo, hi, b = (pred[c].to_numpy(float) for c in ("benefit_low", "benefit_high", "benefit"))
    if args.dump:
        pd.DataFrame(
            {
                "benefit": b,
                "low": lo,
                "high": hi,
                "basis": pred["benefit_basis"].to_numpy(),
                "risk": pred["risk"].to_numpy(float),
                "level": level,
                "tau": tau,
            }
        ).to_parquet(args.out.parent / f"dump_{profile}_{n_train}_{landmark:g}.parquet")
    decile = pd.qcut(pd.Series(b).rank(method="first"), 10, labels=False).to_numpy()
    rows = []
    for what, sel in (
        [("all", np.ones(len(b), bool))]
        + [(f"basis {k}", (pred["benefit_basis"] == k).to_numpy()) for k in ("compared", "extrapolated", "prior")]
        + [(f"decile {d + 1}", decile == d) for d in range(10)]
        + [
            (f"{k} decile {d + 1}", (pred["benefit_basis"] == k).to_numpy() & (within == d))
            for k in ("compared", "extrapolated")
            if (pred["benefit_basis"] == k).sum() >= 100
            for within in [by_basis_decile(b, (pred["benefit_basis"] == k).to_numpy())]
            for d in range(10)
        ]
    ):
        if sel.any():
            rows.append(
                {
                    "profile": profile,
                    "n_train": n_train,
                    "landmark_h": landmark,
                    "patients": what,
                    "n": int(sel.sum()),
                    "coverage_feature_level": coverage(lo[sel], hi[sel], level[sel]),
                    "median_width": float(np.median(hi[sel] - lo[sel])),
                }
            )
    ranking = uplift_table(
        {"shipped benefit": b, "risk": pred["risk"].to_numpy(float), "feature ceiling": level}, tau, (0.3,), 0
    )
    info = {
        "profile": profile,
        "n_train": n_train,
        "landmark_h": landmark,
        "chosen": model.estimator.chosen_,
        "basis": pred["benefit_basis"].value_counts().to_dict(),
        "top30_benefit": float(ranking.loc["shipped benefit", "top30_share"]),
        "top30_risk": float(ranking.loc["risk", "top30_share"]),
        "top30_ceiling": float(ranking.loc["feature ceiling", "top30_share"]),
    }
    return pd.DataFrame(rows), info


def by_basis_decile(b: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Each selected patient's decile of predicted benefit among the selected (-1 elsewhere)."""
    out = np.full(len(b), -1)
    out[sel] = pd.qcut(pd.Series(b[sel]).rank(method="first"), 10, labels=False).to_numpy()
    return out


def summarise(cov: pd.DataFrame, rank: pd.DataFrame) -> str:
    """The two Markdown tables of docs/tocilizumab_benefit.md: ranking, and coverage by basis with the
    lowest decile's coverage (every row of ``cov`` that is a decile counts all bases together)."""
    key = ["profile", "n_train", "landmark_h"]
    lines = [
        "| profile | training patients | L (h) | chosen | top-30% share: shipped benefit | ranking by risk | "
        "feature ceiling | benefit >= risk - 0.02 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in rank.iterrows():
        ok = (
            "yes"
            if r["top30_benefit"] >= r["top30_risk"] - 0.02
            else ("n/a (no gain)" if pd.isna(r["top30_risk"]) else "NO")
        )
        lines.append(
            f"| {r['profile']} | {r['n_train']:,} | {r['landmark_h']:g} | {r['chosen']} | {r['top30_benefit']:.3f} | "
            f"{r['top30_risk']:.3f} | {r['top30_ceiling']:.3f} | {ok} |"
        )
    lines += [
        "",
        "| profile | training patients | L (h) | basis | patients | coverage | lowest decile's coverage | "
        "median width (days) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    dec = cov[cov["patients"].str.contains("decile")]
    # deciles of all patients when one basis covers them all, else each basis's own
    dec = dec.assign(basis=dec["patients"].str.extract(r"^(\w+) decile")[0].fillna("all"))
    lowest = dec.groupby([*key, "basis"])["coverage_feature_level"].min()
    everyone = cov[cov["patients"] == "all"].set_index(key)["n"]
    for _, r in cov[cov["patients"].str.startswith("basis")].iterrows():
        k = tuple(r[c] for c in key)
        basis = r["patients"].split()[1]
        alone = r["n"] == everyone[k]  # this basis is every patient of the cell: its deciles are all's
        low = lowest.get((*k, basis), lowest.get((*k, "all")) if alone else np.nan)
        lines.append(
            f"| {r['profile']} | {r['n_train']:,} | {r['landmark_h']:g} | {basis} | {r['n']:,} | "
            f"{r['coverage_feature_level']:.1%} | {low:.1%} | {r['median_width']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["mixed_practice", "costim_modifier", "fever_practice"])
    ap.add_argument("--landmarks", nargs="+", type=float, default=[48.0])
    ap.add_argument("--n-train", type=int, nargs="+", default=[2000], help="training cohort sizes")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--n-ceiling", type=int, default=10000, help="patients of the cohort the ceiling is fitted to")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--dump", action="store_true", help="write each test patient's benefit, interval and truth")
    ap.add_argument("--out", type=Path, default=Path("experiments/output/benefit_interval_coverage"))
    ap.add_argument("--summarise", type=Path, nargs="+", help="print the tables of earlier runs' output folders")
    args = ap.parse_args()
    if args.summarise:
        cov = pd.concat([pd.read_csv(d / "coverage.csv") for d in args.summarise], ignore_index=True)
        rank = pd.concat([pd.read_csv(d / "ranking.csv") for d in args.summarise], ignore_index=True)
        print(summarise(cov, rank))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tables, infos = [], []
    big = {
        p: simulate(args.n_ceiling, seed=303, profile=p, truth_draws=8, expected_benefit=True) for p in args.profiles
    }
    for n in args.n_train:
        for p in args.profiles:
            for L in args.landmarks:
                t, i = one(p, L, n, args, big[p])
                tables.append(t)
                infos.append(i)
                print(f"{p}, {n} patients, at {L:g} h done ({time.time() - t0:.0f} s): {i}", flush=True)
                pd.DataFrame(infos).to_csv(args.out.with_suffix(".partial.csv"), index=False)
    cov = pd.concat(tables, ignore_index=True)
    rank = pd.DataFrame(infos)
    args.out.mkdir(parents=True, exist_ok=True)
    cov.to_csv(args.out / "coverage.csv", index=False)
    rank.to_csv(args.out / "ranking.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(cov.round(3).to_string(index=False))
        print(rank.round(3).to_string(index=False))
    print(summarise(cov, rank))
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
