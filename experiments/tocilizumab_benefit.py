"""Tocilizumab benefit judged against the simulator's truth.

    .venv/bin/python experiments/tocilizumab_benefit.py [--n 10000] [--replicates 20] [--trials 6] [--landmark-h 48]
        [--windows emulated wide] [--ate-splits 5]

1. Trains the benefit model on one simulated cohort (profile ``mixed_practice``: centres that
   differ in how early they give tocilizumab) and judges it on another cohort of the same
   profile: PEHE, rank correlation, the share of the oracle's gain captured by treating the
   top 10/30/50% by predicted benefit (random = 0, oracle = 1), the same for treating by
   predicted risk and for the guideline policy (treat at grade >= 2), Qini coefficients and
   interval coverage. Every candidate is shown, with what the truth-free criterion chose.
2. The same learners with treatment defined as "any dose in the next 24 h" (the wide window),
   against the same truth: the bias the emulated decision avoids.
3. The AIPW average benefit over ``--replicates`` fresh cohorts, over the patients inside Crump
   et al.'s propensity bound as the model reports it (the median of ``--ate-splits`` random
   cross-fitting splits): how often its 95% interval covers the true average of the same
   patients (emulated and wide window).
4. The founding study's question on its own terms (profile ``seed_study``): the naive
   comparison of treated and untreated patients beside the adjusted estimate and the truth.

The truth of a patient on the test cohort is the expected severe-CRS days spared given the
whole simulated state at L (16 paired futures with and without tocilizumab at L); the average
effect over replicates uses each patient's paired potential outcomes (one future), whose mean
is the same average. Plots and tables go to MLflow
(experiment ``crsml-tocilizumab_benefit-evaluation``) and to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from crsml import evaluation, tracking
from crsml.cohort import Cohort, crs_episodes
from crsml.evaluation import coverage, policy_share, qini, uplift_table
from crsml.models import (
    CANDIDATES,
    DEFAULT_SPLITS,
    BenefitModel,
    Candidate,
    average_effect,
    crossfit_splits,
)
from crsml.simulation import simulate
from crsml.tasks import emulate_trial
from crsml.training import BenefitSettings, benefit_data

L = 48.0
FRACTIONS = (0.1, 0.3, 0.5)
TRAIN_SEED, TEST_SEED = 101, 202  # the training and test cohorts
CEILING = "feature ceiling (fitted to the true benefit; not a candidate)"
RISK = "predicted risk (no tocilizumab now)"
OUT = Path("experiments/output/tocilizumab_benefit")
# the mixed_practice cohort pools three centres whose usual care after the landmark differs, so the
# benefit of treating now differs between them: the centre is a feature (--extra)
EXTRA: tuple[str, ...] = ("site",)


def true_effect(cohort: Cohort, ids: pd.Index, expected: bool = False) -> np.ndarray:
    """One future's paired difference, or (``expected``) its mean over the simulator's futures
    given the patient's whole state at L, which is what a model could at best predict."""
    t = cohort.truth_at(L).loc[ids]
    if expected:
        return t["benefit_days"].to_numpy(dtype=float)
    return (t["severe_days_y0"] - t["severe_days_y1"]).to_numpy(dtype=float)


def feature_ceiling(train: Cohort, X: pd.DataFrame, seed: int) -> xgb.XGBRegressor:
    """An estimate of what the landmark features can carry: XGBoost fitted to the simulator's
    expected benefit itself (never known in practice) on the training cohort's eligible patients.
    No learner that sees only treatments and outcomes should rank better than this."""
    return evaluation.feature_ceiling(X, true_effect(train, X.index, expected=True), seed)


def judge(scores: dict[str, np.ndarray], tau: np.ndarray, seed: int) -> pd.DataFrame:
    """Each score's share of the oracle's gain at FRACTIONS, Qini and Spearman with the truth."""
    return uplift_table(scores, tau, FRACTIONS, seed)


def add_guideline(table: pd.DataFrame, treat: np.ndarray, tau: np.ndarray) -> None:
    """The guideline's row: its share of the oracle's gain at its own fraction treated."""
    table.loc["guideline: treat at grade >= 2", "top30_share"] = policy_share(treat, tau)
    table.loc["guideline: treat at grade >= 2", "treated_share"] = float(treat.mean())


def fit_candidates(model: BenefitModel, X: pd.DataFrame, trial: pd.DataFrame) -> dict[str, Candidate]:
    Xa = X.to_numpy(dtype=np.float32)
    T = trial["treated"].to_numpy(dtype=int)
    Y = trial["severe_days"].to_numpy(dtype=float)
    return {
        n: Candidate(n, model.nuisance_params_, model.seed, model.trim).fit(Xa, T, Y, model.overlap_)
        for n in CANDIDATES
    }


def evaluate(
    model: BenefitModel, fb, train_X, train_trial, test: Cohort, label: str, seed: int, ceiling: xgb.XGBRegressor
) -> tuple[pd.DataFrame, dict]:
    """Every candidate, the exported model, risk, the feature ceiling and the guideline on the test
    cohort's eligible patients inside the model's overlap; risk, the ceiling and the guideline
    also on every eligible patient (``extra["everyone"]``)."""
    s = BenefitSettings(landmark_h=L, extra_patient_columns=EXTRA)
    X, _ = fb.build(test)
    X = X.droplevel("landmark_h")
    task = s.make_task()
    trial = emulate_trial(test, L, task.grace_h, task.horizon_h).reindex(X.index)
    X = X[trial["eligible"].to_numpy(dtype=bool)]
    pred = model.predict(X)
    tau_all = true_effect(test, X.index, expected=True)
    truth = test.truth_at(L).loc[X.index]
    ceil_all = ceiling.predict(X)
    grade_all = X["grade_current"].to_numpy() >= 2
    everyone = judge(
        {
            RISK: pred["risk"].to_numpy(),
            CEILING: ceil_all,
            "simulator's own p_severe (full latent state)": truth["p_severe"].to_numpy(dtype=float),
        },
        tau_all,
        seed,
    )
    add_guideline(everyone, grade_all, tau_all)
    inside = (pred["benefit_basis"] == "compared").to_numpy()
    X, pred = X[inside], pred[inside]
    tau = tau_all[inside]
    Xa = X.to_numpy(dtype=np.float32)
    cands = fit_candidates(model, train_X, train_trial)
    scores = {f"candidate {n}": c.benefit(Xa) for n, c in cands.items()}
    scores[f"exported model ({model.chosen_})"] = pred["benefit"].to_numpy()
    scores[RISK] = pred["risk"].to_numpy()
    scores[CEILING] = ceil_all[inside]
    table = judge(scores, tau, seed)
    table["pehe"] = [float(np.sqrt(np.mean((s - tau) ** 2))) if k != RISK else np.nan for k, s in scores.items()]
    add_guideline(table, grade_all[inside], tau)
    lo, hi = pred["benefit_low"].to_numpy(), pred["benefit_high"].to_numpy()
    forest = cands["causal_forest"].interval(Xa)
    extra = {
        "label": label,
        "n_test_inside": int(len(tau)),
        "n_test_outside": int((~inside).sum()),
        "true_mean_effect": float(tau.mean()),
        "predicted_mean_effect": float(pred["benefit"].mean()),
        "true_mean_effect_outside": float(tau_all[~inside].mean()) if (~inside).any() else float("nan"),
        "coverage_exported_interval": coverage(lo, hi, tau),
        "coverage_causal_forest_interval": coverage(*forest, tau),
        # the intervals are about patients with the same features; the ceiling's prediction stands in
        # for that feature-level truth (an estimate, with its own error)
        "coverage_exported_interval_feature_level": coverage(lo, hi, ceil_all[inside]),
        "coverage_causal_forest_interval_feature_level": coverage(*forest, ceil_all[inside]),
        "exported_benefit_inside_forest_interval": coverage(*model.forest_interval(X), pred["benefit"].to_numpy()),
        "exported_interval_median_width": float(np.median(hi - lo)),
        "chosen": model.chosen_,
        "everyone": everyone,
        "qini_curves": {k: qini(v, tau)[0] for k, v in scores.items()},
        "tau_sum": float(tau.sum()),
    }
    return table, extra


def replicate_ate(r: int, params: dict, n: int, window: str, splits: int = DEFAULT_SPLITS) -> dict[str, float]:
    c = simulate(n, seed=5000 + r, truth_draws=0, profile="mixed_practice")
    _, X, trial, _ = benefit_data(
        c, BenefitSettings(landmark_h=L, task_params={"window": window}, extra_patient_columns=EXTRA)
    )
    Xa = X.to_numpy(dtype=np.float32)
    T, Y = trial["treated"].to_numpy(dtype=int), trial["severe_days"].to_numpy(dtype=float)
    nus = crossfit_splits(Xa, T, Y, params["propensity"], params["outcome"], 3, r, splits)
    a, region = average_effect(nus, T, Y)  # as the model reports it: inside Crump's bound, median of the splits
    truth = true_effect(c, X.index[region]).mean()
    # the first split alone: the estimate before the splits were aggregated (2026-12-01)
    one, one_region = average_effect(nus[0], T, Y)
    return {
        "estimate": a["ate"],
        "low": a["low"],
        "high": a["high"],
        "truth": float(truth),
        "bound": a["bound"],
        "patients": int(region.sum()),
        "split_sd": a["split_sd"],
        "one_split_covers": bool(one["low"] <= true_effect(c, X.index[one_region]).mean() <= one["high"]),
    }


def founding_study(params: dict, n: int, seed: int) -> dict:
    """Naive (ever treated vs never, whole course) beside the adjusted estimate at L and the truth."""
    c = simulate(n, seed=seed, truth_draws=0, profile="seed_study")
    ever = set(c.treatments.loc[c.treatments["drug"] == "tocilizumab", "patient_id"])
    days = crs_episodes(c.crs_grades()).set_index("patient_id")["days_ge3"].reindex(c.patients["patient_id"]).fillna(0)
    treated = days.index.isin(list(ever))
    out = {
        "patients": n,
        "ever_treated": int(treated.sum()),
        "naive_days_treated_minus_untreated": float(days[treated].mean() - days[~treated].mean()),
    }
    _, X, trial, _ = benefit_data(c, BenefitSettings(landmark_h=L, extra_patient_columns=EXTRA))
    T, Y = trial["treated"].to_numpy(dtype=int), trial["severe_days"].to_numpy(dtype=float)
    tau = true_effect(c, X.index)
    out |= {
        "eligible_at_L": int(len(T)),
        "treated_now": int(T.sum()),
        "naive_at_L_benefit": float(Y[T == 0].mean() - Y[T == 1].mean()) if T.sum() else float("nan"),
        "true_mean_benefit": float(tau.mean()),
    }
    out["adjusted_aipw"] = f"not estimable: {int(T.sum())} patients treated now at {L:g} h"
    if T.sum() >= 6 and (1 - T).sum() >= 6:
        nus = crossfit_splits(X.to_numpy(dtype=np.float32), T, Y, params["propensity"], params["outcome"], 3, seed)
        a, inside = average_effect(nus, T, Y)
        out["inside_overlap"] = int(inside.sum())
        if inside.any():
            out |= {
                "adjusted_aipw": a["ate"],
                "adjusted_low": a["low"],
                "adjusted_high": a["high"],
                "true_mean_benefit_inside_overlap": float(tau[inside].mean()),
            }
        else:
            out["adjusted_aipw"] += " and no patient inside overlap"
    return out


def plot_qini(extra: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, curve in extra["qini_curves"].items():
        x = np.arange(1, len(curve) + 1) / len(curve)
        ax.plot(x, curve, lw=1.2, label=k)
    ax.plot([0, 1], [0, extra["tau_sum"]], "k--", lw=1, label="random")
    ax.set_xlabel("share of patients treated now (by score)")
    ax.set_ylabel("true severe-CRS days spared (sum)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    global L, EXTRA
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="patients per training and test cohort")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--replicate-n", type=int, default=5_000)
    ap.add_argument(
        "--ate-splits",
        type=int,
        default=DEFAULT_SPLITS,
        help="random cross-fitting splits behind each average effect (median of their estimates)",
    )
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--landmark-h", type=float, default=48.0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument(
        "--extra",
        nargs="*",
        default=list(EXTRA),
        help="patients columns as features (default: site); give --extra alone for none",
    )
    ap.add_argument(
        "--windows",
        nargs="+",
        default=["emulated", "wide"],
        choices=["emulated", "wide"],
        help="treatment definitions to judge (the emulated decision is needed for the MLflow summary)",
    )
    args = ap.parse_args()
    L = args.landmark_h
    EXTRA = tuple(args.extra)
    if L != 48.0 and args.out == OUT:
        args.out = OUT.with_name(f"{OUT.name}_L{L:g}")
    args.out.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)

    # the training cohort's truth feeds only the feature ceiling, never a candidate or the selection
    train_c = simulate(
        args.n, seed=TRAIN_SEED, truth_draws=16, profile="mixed_practice", landmarks=(L,), expected_benefit=True
    )
    test_c = simulate(
        args.n, seed=TEST_SEED, truth_draws=16, profile="mixed_practice", landmarks=(L,), expected_benefit=True
    )
    results = {}
    params = ceiling = None
    if "emulated" not in args.windows:
        ap.error("--windows must include emulated")
    windows = [w for w in ("emulated", "wide") if w in args.windows]
    for window in windows:
        fb, X, trial, counts = benefit_data(
            train_c, BenefitSettings(landmark_h=L, task_params={"window": window}, extra_patient_columns=EXTRA)
        )
        print(
            f"\n== {window} window: training cohort {args.n:,} patients, {counts['eligible']:,} eligible, "
            f"{counts['treated_now']} treated =="
        )
        model = BenefitModel(
            trials=args.trials, seed=args.seed, ate_splits=args.ate_splits, progress=True, nuisance_params=params
        ).fit(X, trial["treated"], trial["severe_days"], trial["severe"])
        params = params or model.nuisance_params_
        # both windows have the same eligible patients and features; only "treated" differs
        if ceiling is None:
            ceiling = feature_ceiling(train_c, X, args.seed)
        print(f"propensity AUROC {model.propensity_auroc_:.3f}; overlap {model.trim_counts_}")
        print("selection (truth-free; lower DR loss is better):")
        print(model.selection_.round(4).to_string())
        print(f"chosen: {model.chosen_}")
        table, extra = evaluate(model, fb, X, trial, test_c, window, args.seed, ceiling)
        print(
            f"judged on a new cohort ({extra['n_test_inside']:,} eligible inside overlap, "
            f"{extra['n_test_outside']:,} outside): true mean benefit {extra['true_mean_effect']:.3f} days, "
            f"predicted {extra['predicted_mean_effect']:.3f}"
        )
        print(table.round(3).to_string())
        print(
            f"interval coverage of the true effect: exported model {extra['coverage_exported_interval']:.1%}, "
            f"causal forest's own {extra['coverage_causal_forest_interval']:.1%}; of the feature ceiling's "
            f"prediction (feature-level benefit): exported {extra['coverage_exported_interval_feature_level']:.1%}, "
            f"causal forest {extra['coverage_causal_forest_interval_feature_level']:.1%}"
        )
        print(
            f"exported interval: median width {extra['exported_interval_median_width']:.3f} days; the exported "
            f"benefit lies inside the forest's interval for {extra['exported_benefit_inside_forest_interval']:.1%} "
            "of patients (the interval is stretched to hold it for the others)"
        )
        print(
            f"every eligible patient of the new cohort, trimmed ones included (true mean benefit outside the "
            f"overlap {extra['true_mean_effect_outside']:.3f} days); the model gives no benefit there:"
        )
        print(extra["everyone"].round(3).to_string())
        extra["everyone"].to_csv(args.out / f"judged_{window}_all_eligible.csv")
        results[window] = (model, table, extra)
        table.to_csv(args.out / f"judged_{window}.csv")
        model.selection_.to_csv(args.out / f"selection_{window}.csv")
        plot_qini(extra, args.out / f"qini_{window}.png", f"Qini curves on a new cohort ({window} window)")

    metrics = {}
    if args.replicates:
        print(
            f"\n== average benefit over {args.replicates} replicate cohorts of {args.replicate_n:,} (AIPW, 95% CI) =="
        )
        reps = []
        for window in windows:
            for r in range(args.replicates):
                a = replicate_ate(r, params, args.replicate_n, window, args.ate_splits)
                reps.append({"window": window, "replicate": r} | a | {"covers": a["low"] <= a["truth"] <= a["high"]})
        reps = pd.DataFrame(reps)
        reps["width"] = reps["high"] - reps["low"]
        summary = reps.groupby("window").agg(
            coverage=("covers", "mean"),
            covered=("covers", "sum"),
            mean_estimate=("estimate", "mean"),
            mean_truth=("truth", "mean"),
            mean_width=("width", "mean"),
            mean_bound=("bound", "mean"),
            mean_patients=("patients", "mean"),
            mean_split_sd=("split_sd", "mean"),
            covered_by_one_split=("one_split_covers", "sum"),
        )
        summary["bias"] = summary["mean_estimate"] - summary["mean_truth"]
        print(summary.round(3).to_string())
        reps.to_csv(args.out / "replicates.csv", index=False)
        metrics = {f"ate_coverage_{w}": float(summary.loc[w, "coverage"]) for w in windows}

    print("\n== the founding study's question (profile seed_study) ==")
    founding = [founding_study(params, n, seed) for n, seed in ((45, 7), (5000, 8))]
    for f in founding:
        print(json.dumps(f, default=float))

    mlflow = tracking.start("crsml-tocilizumab_benefit-evaluation", args.tracking_uri)
    with mlflow.start_run(run_name="simulated truth"):
        m, t, e = results["emulated"]
        mlflow.log_params({"n": args.n, "replicates": args.replicates, "trials": args.trials, "chosen": m.chosen_})
        mlflow.log_metrics(
            {
                "top30_share_exported": float(t.filter(like="exported", axis=0)["top30_share"].iloc[0]),
                "top30_share_risk": float(t.loc[RISK, "top30_share"]),
                "top30_share_feature_ceiling": float(t.loc[CEILING, "top30_share"]),
                "top30_share_risk_all_eligible": float(e["everyone"].loc[RISK, "top30_share"]),
                "coverage_exported_interval": e["coverage_exported_interval"],
            }
            | metrics
        )
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "founding_study.json").write_text(json.dumps(founding, indent=1, default=float))
            mlflow.log_artifact(str(Path(tmp) / "founding_study.json"), "evaluation")
        mlflow.log_artifacts(str(args.out), "evaluation")
    print(f"\ntables and plots in {args.out} and in MLflow experiment crsml-tocilizumab_benefit-evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
