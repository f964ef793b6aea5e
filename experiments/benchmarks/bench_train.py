"""Time and peak memory of ``crsml train`` with 50 Optuna trials on 5,000 simulated patients.

    .venv/bin/python experiments/benchmarks/bench_train.py [--n 5000] [--trials 50]

Target: under 3 minutes on a 2-core machine. Runs the real command in a child process and
reads its peak resident memory from the operating system.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crsml.simulation import simulate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--task", default="severe_crs")
    ap.add_argument("--ensemble-size", type=int, default=1, help="crsml train --ensemble-size")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        simulate(args.n, seed=1, truth_draws=0).save(t / "cohort")
        cmd = [
            sys.executable,
            "-m",
            "crsml",
            "train",
            "--task",
            args.task,
            "--cohort",
            str(t / "cohort"),
            "--landmark-h",
            "48",
            "--trials",
            str(args.trials),
            "--model-out",
            str(t / "model"),
            "--tracking-uri",
            f"sqlite:///{t / 'mlflow.db'}",
            "--ensemble-size",
            str(args.ensemble_size),
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=t, env=os.environ | {"COLUMNS": "200"}, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return proc.returncode
        print(proc.stdout[-2500:])
    print(
        f"crsml train --task {args.task}, {args.n:,} simulated patients, {args.trials} trials, "
        f"ensemble of {args.ensemble_size}, "
        f"{os.cpu_count()} cores: {wall:.1f} s wall, peak RSS {peak_mib:,.0f} MiB "
        f"(largest process; target < 180 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
