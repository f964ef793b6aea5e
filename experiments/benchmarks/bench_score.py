"""Scoring speed and memory on this machine.

    .venv/bin/python experiments/benchmarks/bench_score.py [--model models/demo_severe_crs_L48]

Prints: risk-only throughput on precomputed features (target >= 500,000 patients/s); scoring
with the top-5 SHAP drivers (target >= 4,000 patients/s and within 15% of XGBoost's raw
``pred_contribs`` of every member on the same rows in the same run); end to end from cohort
tables for 100,000 patients (target < 60 s) with the peak memory of that run; and ``crsml
score`` on 1,000,000 patients in its own process, with that process's peak memory (target <
4 GB). Cohorts are a
simulated batch repeated under new patient ids (simulating 100,000 patients afresh takes a
minute by itself); the 1,000,000-patient cohort is written a copy at a time, so this script
never holds it whole either.
Without --model a model is trained first on 1,000 simulated patients (10 trials).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xgboost as xgb

from crsml.cohort import Cohort
from crsml.explanation import readable_names, top_drivers
from crsml.scoring import score_directory
from crsml.simulation import simulate
from crsml.tracking import load_model


def tiled(base: Cohort, times: int) -> Cohort:
    """``base`` repeated ``times`` times under new patient ids."""

    def rep(df: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for k in range(times):
            d = df.copy()
            d["patient_id"] = d["patient_id"].astype(str) + f"-{k}"
            parts.append(d)
        return pd.concat(parts, ignore_index=True)

    return Cohort(
        patients=rep(base.patients),
        measurements=rep(base.measurements),
        vitals=rep(base.vitals),
        treatments=rep(base.treatments),
        crs=rep(base.crs),
        meta={"source": "tiled benchmark cohort"},
    )


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
    ap.add_argument("--n-memory", type=int, default=1_000_000, help="patients for the peak-memory run (0: skip)")
    ap.add_argument("--ensemble-size", type=int, default=1, help="of the model trained when --model is not given")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model is None:
            import crsml

            result = crsml.train(
                simulate(1000, seed=4, truth_draws=0),
                "severe_crs",
                48.0,
                trials=10,
                cv_repeats=1,
                n_boot=100,
                ensemble_size=args.ensemble_size,
                progress=False,
                log=lambda *a: None,
            )
            args.model = crsml.export_model(result.model, tmp / "model")
        bundle = load_model(args.model)
        base = simulate(10_000, seed=8, truth_draws=0)
        X10 = bundle.features.transform(base)[bundle.feature_names]
        X = pd.DataFrame(np.tile(X10.to_numpy(dtype=np.float32), (100, 1)), columns=bundle.feature_names)
        n = len(X)
        t = best_of(lambda: bundle.estimator.predict_proba(X))
        print(
            f"model: {len(bundle.estimator.boosters_)} booster(s) averaged, "
            f"{sum(b.num_boosted_rounds() for b in bundle.estimator.boosters_):,} trees in all"
        )
        print(
            f"risk only, precomputed features: {n:,} patients in {t:.2f} s = {n / t:,.0f} patients/s (target >= "
            f"500,000)"
        )

        Xs = X.iloc[:100_000]
        labels = readable_names(bundle.feature_names)
        d = xgb.DMatrix(Xs.to_numpy(dtype=np.float32))
        members = bundle.estimator.boosters_  # the model averages its members' log odds
        t_raw = best_of(lambda: [b.predict(d, pred_contribs=True) for b in members])

        def ours() -> None:
            _, c = bundle.estimator.predict_with_contributions(Xs)
            top_drivers(c, Xs.to_numpy(dtype=np.float32), labels, 5)

        t_ours = best_of(ours)
        m = len(Xs)
        print(
            f"risk + top-5 SHAP drivers: {m:,} patients in {t_ours:.2f} s = {m / t_ours:,.0f} patients/s "
            f"(target >= 4,000); raw pred_contribs {t_raw:.2f} s = {m / t_raw:,.0f}/s; overhead "
            f"{t_ours / t_raw - 1:+.1%} (target within 15%)"
        )

        big = tiled(base, args.n // len(base.patients))
        big.save(tmp / "cohort")
        del big
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        scores, _ = score_directory(bundle, tmp / "cohort", explain=5)
        t = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"end to end from cohort tables (validate, features, risk, top-5 drivers): {len(scores):,} patients "
            f"in {t:.1f} s (target < 60 s); peak RSS of this process {peak:,.0f} MiB (before the run {before:,.0f} MiB)"
        )
        print(scores["status"].value_counts().to_dict())
        del scores
        if args.n_memory:
            memory_run(args.model, base, args.n_memory // len(base.patients), tmp)
    return 0


def write_tiled(base: Cohort, times: int, directory: Path) -> None:
    """``tiled(base, times)`` written to Parquet one copy at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True)
    for name in ("patients", "measurements", "vitals", "treatments", "crs"):
        df = getattr(base, name)
        ids = df["patient_id"].astype(str)
        with pq.ParquetWriter(directory / f"{name}.parquet", pa.Schema.from_pandas(df, preserve_index=False)) as w:
            for k in range(times):
                w.write_table(pa.Table.from_pandas(df.assign(patient_id=ids + f"-{k}"), preserve_index=False))


def memory_run(model: Path, base: Cohort, times: int, tmp: Path) -> None:
    """``crsml score`` in a process of its own, which reports its own peak resident memory
    (VmHWM: ``ru_maxrss`` of a child would start from this process's size at the fork)."""
    n = times * len(base.patients)
    write_tiled(base, times, tmp / "million")
    child = (
        "import runpy, sys\n"
        f"sys.argv = ['crsml', 'score', '--model', {str(model)!r}, '--cohort', {str(tmp / 'million')!r}, "
        f"'--out', {str(tmp / 'million.parquet')!r}, '--explain', '5']\n"
        "code = 0\ntry:\n    runpy.run_module('crsml', run_name='__main__')\nexcept SystemExit as e:\n    code = "
        "e.code\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('PEAK', int(hwm) / 1024)\nsys.exit(code)\n"
    )
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    t = time.perf_counter() - t
    peak = [float(line.split()[1]) for line in res.stdout.splitlines() if line.startswith("PEAK")]
    if res.returncode or not peak:
        print(res.stdout[-2000:], res.stderr[-2000:])
        raise SystemExit("the peak-memory run failed")
    rows = pq.ParquetFile(tmp / "million.parquet").metadata.num_rows
    print(
        f"crsml score on {n:,} patients (top-5 drivers, Parquet out): {rows:,} rows in {t:.0f} s; "
        f"peak RSS of that process {peak[0]:,.0f} MiB (target < 4,096 MiB)"
    )


if __name__ == "__main__":
    sys.exit(main())
