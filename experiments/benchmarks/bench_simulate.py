"""Simulate 100,000 patients; prints wall time and peak memory.

Target (issue 3): under 60 s on the 2-core reference machine.
Run: .venv/bin/python experiments/benchmarks/bench_simulate.py [--n N] [--truth-draws K]
"""

from __future__ import annotations

import argparse
import resource
import time

from crsml.simulation import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--truth-draws", type=int, default=8)
    args = ap.parse_args()
    t0 = time.perf_counter()
    c = simulate(args.n, seed=2026, truth_draws=args.truth_draws)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"simulate n={args.n:,} truth_draws={args.truth_draws} time={dt:.1f}s "
        f"rate={args.n / dt:,.0f} patients/s peak_rss={peak:,.0f} MiB "
        f"rows: measurements={len(c.measurements):,} vitals={len(c.vitals):,} truth={len(c.truth):,} "
        f"target<60s {'PASS' if dt < 60 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
