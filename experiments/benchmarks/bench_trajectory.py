"""Trajectory scoring against a single-landmark score of the same patients (issue #35).

    .venv/bin/python experiments/benchmarks/bench_trajectory.py [--n 10000] [--grid 12:120:12]

A landmark supermodel is trained on 400 simulated patients (2 trials: the speed of scoring does
not depend on how well it was tuned), then ``crsml score`` end to end from a cohort directory
(reading, validation, features, risk and the top-5 SHAP drivers, writing Parquet) is timed for
the same ``--n`` patients, alternating: once at one landmark (``--at-h 48``) and once as a
trajectory over every grid time (10 times for 12:120:12). Target: the trajectory within 3x.
Prints each run's seconds, the best of ``--repeats``, rows written and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import crsml
from crsml.cohort import landmark_grid
from crsml.scoring import score_directory
from crsml.simulation import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--grid", type=landmark_grid, default=landmark_grid("12:120:12"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--explain", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = crsml.train(
            simulate(400, seed=1, truth_draws=0),
            "severe_crs",
            landmark_h=48.0,
            landmarks=args.grid,
            trials=2,
            cv_folds=3,
            cv_repeats=1,
            n_boot=50,
            instability_boot=0,
            progress=False,
            log=lambda *a: None,
        )
        model = result.model
        cohort_dir = tmp / "cohort"
        simulate(args.n, seed=7, truth_draws=0).save(cohort_dir, fmt="parquet")
        runs: dict[str, list[float]] = {"one landmark (48 h)": [], "trajectory": []}
        rows = {}
        for _ in range(args.repeats):
            for name, kw in (("one landmark (48 h)", {"landmark_h": 48.0}), ("trajectory", {"trajectory": True})):
                t = time.perf_counter()
                counts, _ = score_directory(model, cohort_dir, out=tmp / "scores.parquet", explain=args.explain, **kw)
                runs[name].append(time.perf_counter() - t)
                rows[name] = sum(counts.values())
                print(f"{name}: {runs[name][-1]:.1f} s, {rows[name]:,} rows", flush=True)
        best = {k: min(v) for k, v in runs.items()}
        print(
            f"\n{args.n:,} patients, {len(args.grid)} grid times, top-{args.explain} drivers, "
            f"crsml {crsml.__version__}:"
            f"\n  one landmark  {best['one landmark (48 h)']:.1f} s ({rows['one landmark (48 h)']:,} rows)"
            f"\n  trajectory    {best['trajectory']:.1f} s ({rows['trajectory']:,} rows)"
            f"\n  ratio         {best['trajectory'] / best['one landmark (48 h)']:.2f}x (target <= 3x)"
        )


if __name__ == "__main__":
    main()
