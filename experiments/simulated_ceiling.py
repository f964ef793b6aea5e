"""Risk models against the simulator's own ceiling.

Simulates 5,000 patients with 32 Monte Carlo futures each (so ``p_severe``/``p_prolonged`` are
precise), holds out 20% of them (stratified), tunes and calibrates the risk model on the rest,
and compares test AUROC with the AUROC of the true probability on the same test patients.

    .venv/bin/python experiments/simulated_ceiling.py [--n 5000] [--trials 40] [--landmark-h 48]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from rich.console import Console
from sklearn.model_selection import train_test_split

from crsml.evaluation.metrics import metric_table, paired_difference
from crsml.models import XGBRiskClassifier
from crsml.simulate import simulate
from crsml.training import TrainSettings, training_data

TRUTH = {"severe_crs": "p_severe", "prolonged_crs": "p_prolonged"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--landmark-h", type=float, default=48.0)
    ap.add_argument("--tasks", nargs="+", default=list(TRUTH), choices=list(TRUTH))
    args = ap.parse_args()
    con = Console(highlight=False, soft_wrap=True)
    with con.status(f"simulating {args.n:,} patients (32 futures each)"):
        cohort = simulate(args.n, seed=args.seed, truth_draws=32)
    for task in args.tasks:
        col = TRUTH[task]
        _, X, y, counts = training_data(cohort, TrainSettings(task=task, landmark_h=args.landmark_h))
        truth = cohort.truth[cohort.truth["landmark_h"] == args.landmark_h].set_index("patient_id")[col]
        p_true = truth.reindex(X.index.get_level_values("patient_id")).to_numpy()
        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=args.seed)
        model = XGBRiskClassifier(n_trials=args.trials, seed=args.seed).fit(X.iloc[idx_tr], y[idx_tr])
        p_model = model.predict_proba(X.iloc[idx_te])[:, 1]
        t = metric_table(y[idx_te], {"crsml xgboost": p_model[None], f"simulator {col} (ceiling)": p_true[idx_te][None]},
                         n_boot=1000, seed=args.seed)
        d, lo, hi = paired_difference(y[idx_te], p_model, p_true[idx_te], "auroc", 1000, args.seed)
        con.rule(f"{task} at L = {args.landmark_h:g} h: {len(idx_tr)} training, {len(idx_te)} test patients "
                 f"({counts['events']} events in all)")
        for name, row in t.iterrows():
            con.print(f"{name:32s} AUROC {row.auroc:.3f} ({row.auroc_low:.3f}-{row.auroc_high:.3f})  "
                      f"Brier {row.brier:.3f}  calibration slope {row.cal_slope:.2f}")
        con.print(f"model minus ceiling: {d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}); target: within 0.03 "
                  f"-> {'met' if d >= -0.03 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
