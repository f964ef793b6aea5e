"""``crsml.evaluate`` on 10,000 simulated patients (#36 target: at most 20 s on this machine).

    .venv/bin/python experiments/benchmarks/bench_evaluate.py [--n 10000] [--json PATH]

A model is trained first on 1,000 simulated patients (5 trials); the timed part is evaluate alone
(1,000 bootstrap resamples, 200 for the loess curve, two subgroup columns) and the report.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import crsml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--json", type=Path, help="write the evaluation's JSON here (to compare two versions' bytes)")
    args = ap.parse_args()
    dev = crsml.simulate(1000, seed=1, truth_draws=0)
    model = crsml.train(dev, "severe_crs", landmark_h=48.0, trials=5, seed=0, progress=False, log=lambda *a: None).model
    new = crsml.simulate(args.n, seed=2, profile="other_centre", truth_draws=0)
    t0 = time.perf_counter()
    result = crsml.evaluate(model, new, by=["sex", "age_band"])
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        crsml.write_evaluation_report(result, Path(tmp) / "report")
        t2 = time.perf_counter()
        if args.json:
            args.json.write_bytes((Path(tmp) / "report" / "evaluation.json").read_bytes())
    n = int(result.flow.loc["labelled", "n"])
    print(
        f"crsml.evaluate on {args.n:,} simulated patients ({n:,} labelled, {len(result.table)} models with "
        f"baselines): {t1 - t0:.1f} s, report {t2 - t1:.1f} s, total {t2 - t0:.1f} s "
        f"(target <= 20 s: {'PASS' if t2 - t0 <= 20 else 'FAIL'})"
    )


if __name__ == "__main__":
    main()
