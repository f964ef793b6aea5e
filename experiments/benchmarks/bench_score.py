"""Scoring speed and memory on this machine.

    .venv/bin/python experiments/benchmarks/bench_score.py [--model models/demo_severe_crs_L48]

Prints: risk-only throughput on precomputed features (target >= 500,000 patients/s); scoring
with the top-5 SHAP drivers (target >= 4,000 patients/s and within 15% of XGBoost's raw
``pred_contribs`` on the same rows in the same run); end to end from cohort tables for 100,000
patients (target < 60 s) with the peak memory of that run. Cohorts are a simulated batch
repeated under new patient ids (simulating 100,000 patients afresh takes a minute by itself).
Without --model a model is trained first on 1,000 simulated patients (10 trials).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from crsml.cohort import Cohort
from crsml.models import load_bundle
from crsml.scoring.explain import readable_names, top_drivers
from crsml.scoring.score import score_directory
from crsml.simulate import simulate


def tiled(base: Cohort, times: int) -> Cohort:
    """``base`` repeated ``times`` times under new patient ids."""
    def rep(df: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for k in range(times):
            d = df.copy()
            d["patient_id"] = d["patient_id"].astype(str) + f"-{k}"
            parts.append(d)
        return pd.concat(parts, ignore_index=True)

    return Cohort(patients=rep(base.patients), measurements=rep(base.measurements), vitals=rep(base.vitals),
                  treatments=rep(base.treatments), crs=rep(base.crs), meta={"source": "tiled benchmark cohort"})


def best_of(f, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model is None:
            from crsml.training import TrainSettings, train

            train(simulate(1000, seed=4, truth_draws=0), TrainSettings(trials=10, cv_repeats=1, n_boot=100),
                  model_out=tmp / "model", tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", progress=False, log=lambda *a: None)
            args.model = tmp / "model"
        bundle = load_bundle(args.model)
        base = simulate(10_000, seed=8, truth_draws=0)
        X10 = bundle.features.transform(base)[bundle.feature_names]
        X = pd.DataFrame(np.tile(X10.to_numpy(dtype=np.float32), (100, 1)), columns=bundle.feature_names)
        n = len(X)
        t = best_of(lambda: bundle.classifier.predict_proba(X))
        print(f"risk only, precomputed features: {n:,} patients in {t:.2f} s = {n / t:,.0f} patients/s (target >= 500,000)")

        Xs = X.iloc[:100_000]
        labels = readable_names(bundle.feature_names)
        d = xgb.DMatrix(Xs.to_numpy(dtype=np.float32))
        t_raw = best_of(lambda: bundle.classifier.booster_.predict(d, pred_contribs=True))

        def ours() -> None:
            _, c = bundle.classifier.predict_with_contributions(Xs)
            top_drivers(c, Xs.to_numpy(dtype=np.float32), labels, 5)

        t_ours = best_of(ours)
        m = len(Xs)
        print(f"risk + top-5 SHAP drivers: {m:,} patients in {t_ours:.2f} s = {m / t_ours:,.0f} patients/s "
              f"(target >= 4,000); raw pred_contribs {t_raw:.2f} s = {m / t_raw:,.0f}/s; overhead "
              f"{t_ours / t_raw - 1:+.1%} (target within 15%)")

        big = tiled(base, args.n // len(base.patients))
        big.save(tmp / "cohort")
        del big
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        scores, _ = score_directory(bundle, tmp / "cohort", explain=5)
        t = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"end to end from cohort tables (validate, features, risk, top-5 drivers): {len(scores):,} patients "
              f"in {t:.1f} s (target < 60 s); peak RSS of this process {peak:,.0f} MiB (before the run {before:,.0f} MiB)")
        print(scores["status"].value_counts().to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
