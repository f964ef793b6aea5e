"""What ``crsml train`` costs beyond fitting: the command end to end against ``crsml.train`` alone
on the same cohort and settings (1 Optuna trial, so the model's own work is small and the
overhead shows), with a cProfile of the command's own process.

    .venv/bin/python experiments/benchmarks/bench_train_overhead.py [--n 150 5000] [--profile-top 25]

Target (#36): end to end at most 1.5x ``crsml.train``, at 150 and at 5,000 patients. Each size
runs the library call and the command in fresh child processes (the same imports paid by both),
alternating, best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crsml.simulation import simulate

SETTINGS = ["--trials", "1", "--instability-boot", "0", "--landmark-h", "48"]
LIBRARY = """
import sys, time, crsml
start = time.perf_counter()
cohort = crsml.read_cohort(sys.argv[1])
crsml.train(cohort, "severe_crs", landmark_h=48, trials=1, instability_boot=0, log=lambda *a: None, progress=False)
print(f"{time.perf_counter() - start:.3f}")
"""


def _command(t: Path, cohort: Path, out: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "crsml",
        "train",
        "--task",
        "severe_crs",
        "--cohort",
        str(cohort),
        *SETTINGS,
        "--model-out",
        str(t / out),
        "--tracking-uri",
        f"sqlite:///{t / 'mlflow.db'}",
    ]


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=os.environ | {"COLUMNS": "200"}, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[150, 5000])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--profile-top", type=int, default=0, help="print the command's top functions (cumulative)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in args.n:
            cohort = t / f"cohort{n}"
            simulate(n, seed=1, truth_draws=0).save(cohort)
            lib, cli = [], []
            for r in range(args.repeats):
                # the library's own time is measured inside its process, after the imports
                proc = subprocess.run([sys.executable, "-c", LIBRARY, str(cohort)], capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-2000:])
                lib_wall = float(proc.stdout.strip().splitlines()[-1])
                lib.append(lib_wall)
                cli.append(_timed(_command(t, cohort, f"m{n}_{r}"), t))
            print(
                f"n={n:,}: crsml.train {min(lib):.1f} s (read_cohort + train, after imports); crsml train end to end "
                f"{min(cli):.1f} s; ratio {min(cli) / min(lib):.2f} (target <= 1.5); best of {args.repeats}"
            )
            if args.profile_top:
                prof = t / f"train{n}.prof"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "cProfile",
                        "-o",
                        str(prof),
                        "-m",
                        "crsml",
                        *_command(t, cohort, f"p{n}")[3:],
                    ],
                    cwd=t,
                    capture_output=True,
                    check=True,
                )
                import pstats

                print(f"cProfile of crsml train, n={n:,} (cumulative seconds, top {args.profile_top}):")
                stats = pstats.Stats(str(prof))
                stats.sort_stats("cumulative").print_stats(args.profile_top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
