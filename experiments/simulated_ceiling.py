"""Risk models against the simulator's own ceiling.

Simulates 5,000 patients with 32 Monte Carlo futures each (so ``p_severe``/``p_prolonged`` are
precise), holds out 20% of them (stratified), tunes and calibrates the risk model on the rest,
and compares test AUROC with the AUROC of the true probability on the same test patients.

The true probability is computed from the simulator's whole latent state, much of which no
landmark feature sees. To tell how much of the gap the features leave open, two "feature
ceilings" are fitted to the truth itself (never available in practice) rather than to the
labels: XGBoost regressing ``p_severe``/``p_prolonged`` on the same training patients' landmark
features, and the same on ``--ceiling-n`` further simulated patients. No model fitted to labels
from these features should be expected to beat them.

    .venv/bin/python experiments/simulated_ceiling.py [--n 5000] [--seeds 11] [--trials 40] [--landmark-h 48]
        [--ceiling-n 20000] [--extra site] [--ensemble-size K]

The simulated cohort pools three centres whose tocilizumab habits differ, so usual care after
the landmark, and with it the risk, differs between them: ``--extra site`` makes the centre a
feature of the model and of the feature ceilings alike (default: none).

With several ``--seeds`` each is a new simulated cohort, and the gaps are summarised over them:
one 993-patient test split gives the gap with a 95% interval about 0.03 wide.

``--full-state`` adds a third ceiling that no record could support: the same regression of the
truth on the features *plus* the simulator's latent traits and its whole state at the landmark
(the ``truth`` table's ``LATENT_COLUMNS``: CAR-T level and growth, antigen, the myeloid loop,
organ dysfunction, the noise process, hours at grade >= 1 so far, ...). It bounds what any
learner on this many patients could reach even if every latent quantity were measured.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from rich.console import Console
from sklearn.model_selection import train_test_split

from crsml.evaluation import feature_ceiling, metric_table, paired_difference
from crsml.models import XGBRiskClassifier
from crsml.simulation import LATENT_COLUMNS, simulate
from crsml.training import TrainSettings

TRUTH = {"severe_crs": "p_severe", "prolonged_crs": "p_prolonged"}


def truth_of(cohort, X, col: str, landmark_h: float) -> np.ndarray:
    return cohort.truth_at(landmark_h)[col].reindex(X.index.get_level_values("patient_id")).to_numpy()


def ceiling(X, p_true: np.ndarray, seed: int):
    """XGBoost fitted to the true probability (not the labels) on the landmark features."""
    return feature_ceiling(X, p_true, seed, n_estimators=800, max_depth=5)


def with_latent(cohort, X, landmark_h: float):
    """The landmark features with the simulator's latent traits and state at L beside them."""
    latent = cohort.truth_at(landmark_h)[list(LATENT_COLUMNS)].reindex(X.index.get_level_values("patient_id"))
    return X.assign(**{f"latent_{k}": latent[k].to_numpy(dtype=float) for k in LATENT_COLUMNS})


def run_seed(seed: int, args, con: Console) -> dict[str, dict[str, float]]:
    """One simulated cohort: train on 80%, compare with the truth on the other 20%; per task, the
    gap of crsml and of each ceiling to the truth."""
    with con.status(f"simulating {args.n:,} patients (32 futures each), seed {seed}"):
        cohort = simulate(args.n, seed=seed, truth_draws=32)
    extra = None
    if args.ceiling_n:
        with con.status(f"simulating {args.ceiling_n:,} more patients for the feature ceiling (16 futures each)"):
            extra = simulate(args.ceiling_n, seed=seed + 1, truth_draws=16, landmarks=(args.landmark_h,))
    gaps = {}
    for task in args.tasks:
        col = TRUTH[task]
        data = (
            TrainSettings(task=task, landmark_h=args.landmark_h)
            .make_task()
            .prepare(cohort, args.landmark_h, args.extra)
        )
        X, y, counts = data.X, data.y.to_numpy(dtype=int), data.counts
        p_true = truth_of(cohort, X, col, args.landmark_h)
        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
        model = XGBRiskClassifier(n_trials=args.trials, seed=seed, ensemble_size=args.ensemble_size).fit(
            X.iloc[idx_tr], y[idx_tr]
        )
        p_model = model.predict_proba(X.iloc[idx_te])[:, 1]
        p_same = ceiling(X.iloc[idx_tr], p_true[idx_tr], seed).predict(X.iloc[idx_te])
        rows = {
            "crsml xgboost": p_model,
            f"simulator {col} (ceiling)": p_true[idx_te],
            f"feature ceiling, {len(idx_tr):,} patients": p_same,
        }
        if extra is not None:
            X_extra, _ = TrainSettings(task=task).make_task().dataset(extra, args.landmark_h, args.extra)
            p_more = ceiling(X_extra, truth_of(extra, X_extra, col, args.landmark_h), seed).predict(X.iloc[idx_te])
            rows[f"feature ceiling, {len(X_extra):,} patients"] = p_more
        if args.full_state:
            X_full = with_latent(cohort, X, args.landmark_h)
            rows[f"full-state ceiling, {len(idx_tr):,} patients"] = ceiling(
                X_full.iloc[idx_tr], p_true[idx_tr], seed
            ).predict(X_full.iloc[idx_te])
        t = metric_table(y[idx_te], {k: v[None] for k, v in rows.items()}, n_boot=1000, seed=seed)
        d, lo, hi = paired_difference(y[idx_te], p_model, p_true[idx_te], "auroc", 1000, seed)
        gaps[task] = {"crsml": d}
        con.rule(
            f"{task} at L = {args.landmark_h:g} h, seed {seed}: {len(idx_tr)} training, {len(idx_te)} test "
            f"patients ({counts['events']} events in all)"
        )
        for name, row in t.iterrows():
            con.print(
                f"{name:32s} AUROC {row.auroc:.3f} ({row.auroc_low:.3f}-{row.auroc_high:.3f})  "
                f"Brier {row.brier:.3f}  calibration slope {row.cal_slope:.2f}"
            )
        con.print(
            f"model minus ceiling: {d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}); target: within 0.03 "
            f"-> {'met' if d >= -0.03 else 'NOT met'}"
        )
        for name in list(rows)[2:]:
            d, lo, hi = paired_difference(y[idx_te], rows[name], p_true[idx_te], "auroc", 1000, seed)
            gaps[task][name.split(",")[0]] = d
            dm, lom, him = paired_difference(y[idx_te], p_model, rows[name], "auroc", 1000, seed)
            con.print(
                f"{name} minus ceiling: {d:+.3f} ({lo:+.3f} to {hi:+.3f}); "
                f"crsml minus it: {dm:+.3f} ({lom:+.3f} to {him:+.3f})"
            )
    return gaps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[11],
        help="one simulated cohort per seed; with several, the gaps are summarised over them",
    )
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--landmark-h", type=float, default=48.0)
    ap.add_argument(
        "--ceiling-n",
        type=int,
        default=20_000,
        help="extra simulated patients for the feature ceiling (0: only the same-patients ceiling)",
    )
    ap.add_argument("--tasks", nargs="+", default=list(TRUTH), choices=list(TRUTH))
    ap.add_argument("--extra", nargs="*", default=[], help="patients columns as features, e.g. site")
    ap.add_argument("--ensemble-size", type=int, default=1, help="best Optuna trials the risk model averages")
    ap.add_argument(
        "--full-state",
        action="store_true",
        help="also fit the ceiling that sees the simulator's latent traits and state at L",
    )
    args = ap.parse_args()
    con = Console(highlight=False, soft_wrap=True)
    gaps = {seed: run_seed(seed, args, con) for seed in args.seeds}
    if len(args.seeds) > 1:
        con.rule(f"crsml minus the simulator's truth, test AUROC, over {len(args.seeds)} simulated cohorts")
        for task in args.tasks:
            for name in gaps[args.seeds[0]][task]:
                g = np.array([gaps[s][task][name] for s in args.seeds])
                con.print(
                    f"{task}, {name}: " + ", ".join(f"{x:+.3f}" for x in g) + f"; mean {g.mean():+.3f} "
                    f"(SD {g.std(ddof=1):.3f}); within 0.03 in {(g >= -0.03).sum()} of {len(g)}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
