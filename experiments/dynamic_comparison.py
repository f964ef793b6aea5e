"""Landmark supermodel against per-landmark models (issue #35; docs/dynamic.md).

Two designs, each printing Markdown tables of AUROC (bootstrap 95% interval) at 24, 48 and 72 h:

* ``--cohort real``: the shared real cohort (read from ../shared/data/real/, never copied),
  out of fold. The patients are split into ``--folds`` stratified folds, ``--repeats`` times;
  every learner, per-landmark or stacked, is fitted on the same training patients and predicts
  the same test patients, so the comparison is paired.
* ``--simulate N``: a simulated cohort of N patients (``--seed``) trains every learner once;
  each is judged on 5,000 other simulated patients (seed 999), whose outcomes and true risks
  the simulator knows (``ceiling``: the AUROC of the true risk). With ``--seeds S1 S2 ...``
  one training cohort per seed, and the tables give the mean over them with the range (what a
  centre's luck of the draw changes), not one cohort's bootstrap interval.

Learners, each per landmark and stacked on the grid ``--grid`` (default 12:120:12) with the
landmark as a feature:

* ``tuned``: crsml's ``XGBRiskClassifier`` (Optuna, ``--trials``, calibrated);
* ``fixed``: XGBoost with a fixed conservative configuration (300 trees, depth 3, learning rate
  0.03), no tuning;
* ``ridge``: L2 logistic regression (median imputation with indicators, standardised, C = 0.01);

and crsml's published baselines per landmark (m-EASIX, IL-6 maximum, current grade, ...).

    .venv/bin/python experiments/dynamic_comparison.py --cohort real --trials 20
    .venv/bin/python experiments/dynamic_comparison.py --simulate 500 --trials 20

``--out DIR`` also writes the predictions' figures as JSON (no patient identifiers).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

import crsml
from crsml.cohort import landmark_grid
from crsml.evaluation import available_baselines, format_interval, metric_table, paired_difference
from crsml.features import LANDMARK_TIME_FEATURE
from crsml.models import XGBRiskClassifier

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"
AT = (24.0, 48.0, 72.0)


def learners(trials: int, seed: int) -> dict[str, object]:
    """The candidate learners, unfitted (scikit-learn style: fit(X, y), predict_proba(X))."""
    return {
        "tuned": XGBRiskClassifier(n_trials=trials, inner_folds=3, seed=seed, progress=False),
        "fixed": XGBClassifier(
            n_estimators=300,
            max_depth=3,
            learning_rate=0.03,
            subsample=0.8,
            colsample_bytree=0.8,
            random_state=seed,
            n_jobs=1,
            tree_method="hist",
        ),
        "ridge": make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=0.01, max_iter=2000),
        ),
    }


def fit_predict(X: pd.DataFrame, y: np.ndarray, Xte: pd.DataFrame, trials: int, seed: int) -> dict[str, np.ndarray]:
    """Every learner fitted on (X, y): its predicted risk of ``Xte``'s rows."""
    from sklearn.base import clone

    out = {}
    for name, est in learners(trials, seed).items():
        m = clone(est).fit(X, y)
        out[name] = m.predict_proba(Xte)[:, 1]
    return out


def stacked_data(cohort: crsml.cohort.Cohort, grid: tuple[float, ...]) -> tuple[pd.DataFrame, pd.Series]:
    """Every labelled patient at every landmark of ``grid`` (crsml's own stacking)."""
    return crsml.tasks.get("severe_crs").dataset(cohort, list(grid))


def predictions(
    X: pd.DataFrame, y: pd.Series, train_ids: np.ndarray, test_ids: np.ndarray, trials: int, seed: int
) -> dict[str, dict[float, np.ndarray]]:
    """Per-landmark and stacked learners fitted on ``train_ids``'s rows; predictions for
    ``test_ids``'s rows at each landmark of ``AT`` (keyed by learner, then landmark)."""
    pid = X.index.get_level_values("patient_id")
    at = X.index.get_level_values("landmark_h").to_numpy(dtype=float)
    tr, te = pid.isin(train_ids), pid.isin(test_ids)
    out: dict[str, dict[float, np.ndarray]] = {}
    per = X.drop(columns=[LANDMARK_TIME_FEATURE])
    for L in AT:
        rows_tr, rows_te = tr & (at == L), te & (at == L)
        for name, p in fit_predict(per[rows_tr], y[rows_tr].to_numpy(), per[rows_te], trials, seed).items():
            out.setdefault(f"{name} per landmark", {})[L] = p
        baselines, _ = available_baselines(per[rows_tr], seed)
        for name, b in baselines.items():
            out.setdefault(name, {})[L] = b.fit(per[rows_tr], y[rows_tr].to_numpy()).predict_proba(per[rows_te])[:, 1]
    te_at = {L: te & (at == L) for L in AT}
    rows_te_any = np.zeros(len(X), dtype=bool)
    for v in te_at.values():
        rows_te_any |= v
    stacked = fit_predict(X[tr], y[tr].to_numpy(), X[rows_te_any], trials, seed)
    where = np.flatnonzero(rows_te_any)
    for name, p in stacked.items():
        full = np.full(len(X), np.nan)
        full[where] = p
        out[f"{name} stacked"] = {L: full[te_at[L]] for L in AT}
    return out


def table(y_at: dict[float, np.ndarray], preds: dict[str, dict[float, np.ndarray]], n_boot: int) -> pd.DataFrame:
    """AUROC (interval) of each learner at each landmark; ``preds[name][L]`` is (repeats, n)."""
    rows = {}
    for L in AT:
        t = metric_table(y_at[L], {k: v[L] for k, v in preds.items()}, n_boot=n_boot, seed=0)
        rows[f"{L:g} h ({len(y_at[L])}, {int(y_at[L].sum())} events)"] = {
            k: format_interval(t.loc[k, "auroc"], t.loc[k, "auroc_low"], t.loc[k, "auroc_high"]) for k in t.index
        }
    return pd.DataFrame(rows)


def md(df: pd.DataFrame) -> str:
    """A frame as a Markdown table (its index the first column)."""
    head = ["", *map(str, df.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [
        "| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(df.index, df.to_numpy(), strict=True)
    ]
    return "\n".join(lines)


def differences(y_at, preds, pairs, n_boot: int) -> pd.DataFrame:
    rows = {}
    for a, b in pairs:
        rows[f"{a} - {b}"] = {
            f"{L:g} h": format_interval(*paired_difference(y_at[L], preds[a][L], preds[b][L], "auroc", n_boot, 0))
            for L in AT
        }
    return pd.DataFrame(rows).T


PAIRS = [
    ("tuned stacked", "tuned per landmark"),
    ("fixed stacked", "fixed per landmark"),
    ("ridge stacked", "ridge per landmark"),
    ("fixed per landmark", "tuned per landmark"),
    ("ridge per landmark", "tuned per landmark"),
]


def run_real(args: argparse.Namespace) -> dict:
    cohort, _ = crsml.import_daily(REAL)
    X, y = stacked_data(cohort, args.grid)
    pid = X.index.get_level_values("patient_id")
    at = X.index.get_level_values("landmark_h").to_numpy(dtype=float)
    ids = np.asarray(pd.unique(pid))
    ever = y.groupby(level="patient_id").max().reindex(ids).to_numpy()
    print(
        f"real cohort: {len(ids)} labelled patients on the grid {args.grid[0]:g}-{args.grid[-1]:g} h "
        f"({len(y)} patient-landmark rows); {args.folds} folds x {args.repeats} repeats, {args.trials} trials",
        flush=True,
    )
    y_at = {L: y.to_numpy()[at == L] for L in AT}
    pos_at = {L: {p: i for i, p in enumerate(pid[at == L])} for L in AT}
    preds: dict[str, dict[float, np.ndarray]] = {}
    t0 = time.perf_counter()
    for r in range(args.repeats):
        for k, (tr, te) in enumerate(StratifiedKFold(args.folds, shuffle=True, random_state=r).split(ids, ever)):
            fold = predictions(X, y, ids[tr], ids[te], args.trials, args.seed)
            for name, by_L in fold.items():
                for L, p in by_L.items():
                    arr = preds.setdefault(name, {}).setdefault(L, np.full((args.repeats, len(y_at[L])), np.nan))
                    test_pids = pid[at == L][np.isin(pid[at == L], ids[te])]
                    arr[r, [pos_at[L][q] for q in test_pids]] = p
            print(f"  repeat {r + 1}, fold {k + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {"y_at": y_at, "preds": preds}


_TEST: dict[str, crsml.cohort.Cohort] = {}


def run_simulated(args: argparse.Namespace) -> dict:
    from crsml.simulation import simulate

    train = simulate(args.simulate, seed=args.seed, truth_draws=0)
    if "test" not in _TEST:  # the same 5,000 test patients for every training cohort
        _TEST["test"] = simulate(5000, seed=999, landmarks=AT, truth_draws=args.truth_draws)
    test = _TEST["test"]
    X, y = stacked_data(train, args.grid)
    Xt, yt = stacked_data(test, AT)
    Xt = Xt.reindex(columns=X.columns)
    print(
        f"simulated: {args.simulate} training patients (seed {args.seed}), {len(y)} patient-landmark rows on the "
        f"grid {args.grid[0]:g}-{args.grid[-1]:g} h; judged on 5,000 others (seed 999); {args.trials} trials",
        flush=True,
    )
    at_t = Xt.index.get_level_values("landmark_h").to_numpy(dtype=float)
    both = pd.concat(
        [
            X,
            Xt.set_axis(
                pd.MultiIndex.from_arrays(
                    ["test:" + Xt.index.get_level_values(0).astype(str), Xt.index.get_level_values(1)],
                    names=Xt.index.names,
                )
            ),
        ]
    )
    yy = pd.concat([y, pd.Series(yt.to_numpy(), index=both.index[len(X) :])])
    train_ids = np.asarray(pd.unique(X.index.get_level_values("patient_id")))
    test_ids = np.asarray(pd.unique(both.index.get_level_values("patient_id")[len(X) :]))
    t0 = time.perf_counter()
    fold = predictions(both, yy, train_ids, test_ids, args.trials, args.seed)
    print(f"  fitted in {time.perf_counter() - t0:.0f} s", flush=True)
    y_at = {L: yt.to_numpy()[at_t == L] for L in AT}
    preds = {name: {L: np.atleast_2d(p) for L, p in by_L.items()} for name, by_L in fold.items()}
    truth = test.truth.set_index(["patient_id", "landmark_h"])["p_severe"] if args.truth_draws else None
    ceiling = {}
    if truth is not None:
        for L in AT:
            idx = Xt.index[at_t == L]
            p = truth.reindex(pd.MultiIndex.from_arrays([idx.get_level_values(0), idx.get_level_values(1)]))
            ok = p.notna().to_numpy()
            ceiling[f"{L:g} h"] = float(roc_auc_score(y_at[L][ok], p.to_numpy()[ok]))
        print(f"ceiling (AUROC of the simulator's true risk, {args.truth_draws} draws):", json.dumps(ceiling))
    return {"y_at": y_at, "preds": preds, "ceiling": ceiling}


def over_seeds(args: argparse.Namespace) -> None:
    """Simulated training cohorts of several seeds: mean AUROC on the same test patients, and the
    range over the training cohorts; paired differences the same way."""
    auroc: dict[int, pd.DataFrame] = {}
    for seed in args.seeds:
        args.seed = seed
        res = run_simulated(args)
        auroc[seed] = pd.DataFrame(
            {
                f"{L:g} h": {k: float(roc_auc_score(res["y_at"][L], v[L][0])) for k, v in res["preds"].items()}
                for L in AT
            }
        )
    cube = np.stack([a.to_numpy() for a in auroc.values()])
    first = next(iter(auroc.values()))

    def cell(vals: np.ndarray) -> str:
        return f"{vals.mean():.3f} ({vals.min():.3f} to {vals.max():.3f})"

    t = pd.DataFrame(
        [[cell(cube[:, i, j]) for j in range(cube.shape[2])] for i in range(cube.shape[1])],
        index=first.index,
        columns=first.columns,
    )
    print(f"\nAUROC on the 5,000 test patients: mean over {len(args.seeds)} training cohorts (range):\n")
    print(md(t))
    rows = {}
    for a, b in PAIRS:
        ia, ib = list(first.index).index(a), list(first.index).index(b)
        d = cube[:, ia, :] - cube[:, ib, :]
        rows[f"{a} - {b}"] = {
            c: cell(d[:, j]) + f", {int((d[:, j] > 0).sum())}/{len(d)} above 0" for j, c in enumerate(first.columns)
        }
    dt = pd.DataFrame(rows).T
    print("\nAUROC differences, mean over training cohorts (range; cohorts where the first is higher):\n")
    print(md(dt))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "auroc_seeds.json").write_text(
            json.dumps({str(s): a.to_dict() for s, a in auroc.items()}, indent=1)
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", choices=["real"], default=None)
    ap.add_argument("--simulate", type=int, default=None, help="simulated training patients")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="simulated: one training cohort per seed")
    ap.add_argument("--grid", type=landmark_grid, default=landmark_grid("12:120:12"))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--truth-draws", type=int, default=16)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if (args.cohort is None) == (args.simulate is None):
        ap.error("give --cohort real or --simulate N")
    if args.simulate is not None and args.seeds:
        return over_seeds(args)
    res = run_real(args) if args.cohort else run_simulated(args)
    t = table(res["y_at"], res["preds"], args.n_boot)
    print("\nAUROC at each landmark (patients, events), bootstrap 95% intervals:\n")
    print(md(t))
    d = differences(res["y_at"], res["preds"], PAIRS, args.n_boot)
    print("\nPaired AUROC differences on the same patients (bootstrap 95% intervals):\n")
    print(md(d))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "auroc.json").write_text(
            json.dumps({"auroc": t.to_dict(), "differences": d.to_dict(), "ceiling": res.get("ceiling")}, indent=1)
        )


if __name__ == "__main__":
    main()
