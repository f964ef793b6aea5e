"""Landmark features for 100,000 simulated patients, beside one plain pandas group-by
(max, min, last, count per patient and analyte) over the same pre-landmark rows.

Targets (issue 4): features no more than 5x that group-by, and under 10 s, on 2 cores.
Run: .venv/bin/python experiments/benchmarks/bench_features.py [--n N] [--landmark-h L] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from crsml.features import LandmarkFeatures
from crsml.simulation import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--landmark-h", type=float, default=48.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    L = args.landmark_h
    t0 = time.perf_counter()
    cohort = simulate(args.n, seed=7, truth_draws=1, landmarks=(L,))
    print(
        f"setup: simulated {args.n:,} patients in {time.perf_counter() - t0:.1f}s "
        f"({len(cohort.measurements):,} measurement rows)"
    )
    fb = LandmarkFeatures(landmark_h=L).fit(cohort)

    m = cohort.measurements
    t_ref = t_feat = float("inf")
    for _ in range(args.repeats):  # best of N for both, as timeit does: the least disturbed run
        t0 = time.perf_counter()
        pre = m[m["time_h"] <= L]
        ref = pre.groupby(["patient_id", "analyte"], observed=True)["value"].agg(["max", "min", "last", "count"])
        t_ref = min(t_ref, time.perf_counter() - t0)

        t0 = time.perf_counter()
        X = fb.transform(cohort)
        t_feat = min(t_feat, time.perf_counter() - t0)
    ratio = t_feat / t_ref
    print(
        f"best of {args.repeats}: groupby(max,min,last,count): {t_ref:.2f}s over {len(pre):,} rows -> {len(ref):,} "
        f"cells"
    )
    print(
        f"features L={L:g}h: {t_feat:.2f}s -> {X.shape[0]:,} patients x {X.shape[1]} features; "
        f"ratio {ratio:.2f}x (target <= 5x: {'PASS' if ratio <= 5 else 'FAIL'}; "
        f"< 10 s: {'PASS' if t_feat < 10 else 'FAIL'})"
    )


if __name__ == "__main__":
    main()
