"""How the risk model's tuning does on small simulated cohorts (the size of a centre's records),
judged on 5,000 simulated patients it never saw; never the real cohort.

    .venv/bin/python experiments/small_cohort_search.py --n 150 --landmark-h 48

Prints, for each of eight simulated training cohorts, the test AUROC, log loss and the fitting
time of one ``XGBRiskClassifier`` (40 trials, 3 inner folds, one thread). Run it at two commits
(``git worktree add /tmp/old REV`` and ``PYTHONPATH=/tmp/old/src``) to compare two versions
of the search on the same patients, or ``--ensemble-size 5`` against the default (1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

import crsml
from crsml.models import XGBRiskClassifier
from crsml.simulation import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--landmark-h", type=float, default=48)
    ap.add_argument("--task", default="severe_crs")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)))
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--ensemble-size", type=int, default=1, help="best Optuna trials the final model averages")
    args = ap.parse_args()
    task = crsml.tasks.get(args.task)
    Xt, yt = task.dataset(simulate(5000, seed=999, truth_draws=0), args.landmark_h)
    rows = []
    for seed in args.seeds:
        X, y = task.dataset(simulate(args.n, seed=seed, truth_draws=0), args.landmark_h)
        t = time.perf_counter()
        m = XGBRiskClassifier(
            n_trials=args.trials, inner_folds=3, seed=0, n_threads=1, ensemble_size=args.ensemble_size
        ).fit(X, y)
        p = m.predict_proba(Xt.reindex(columns=X.columns))[:, 1]
        rows.append((roc_auc_score(yt, p), log_loss(yt, p), time.perf_counter() - t))
        print(
            f"cohort seed {seed}: {len(y)} labelled, test AUROC {rows[-1][0]:.4f}, "
            f"log loss {rows[-1][1]:.4f}, fit {rows[-1][2]:.1f} s",
            flush=True,
        )
    auc, ll, sec = np.mean(rows, axis=0)
    print(
        f"crsml {crsml.__version__} ({crsml.__file__}): ensemble {m.ensemble_size}, n={args.n} "
        f"L={args.landmark_h:g} h, mean test AUROC {auc:.4f}, "
        f"log loss {ll:.4f}, fit {sec:.1f} s"
    )


if __name__ == "__main__":
    main()
