"""``crsml simulate``: write a simulated cohort with its truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def simulate_command(
    n: Annotated[int, typer.Option("--n", help="number of patients")],
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same bytes)")],
    out: Annotated[Path, typer.Option("--out", help="cohort directory to write")],
    profile: Annotated[str, typer.Option(help="population profile")] = "b_all",
    truth_draws: Annotated[int, typer.Option(help="Monte Carlo futures per patient for p_severe")] = 8,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Simulate a CD19 CAR-T cohort (every DESIGN.md table plus truth)."""
    from rich.console import Console

    from crsml.cohort import check_output
    from crsml.errors import CrsmlError
    from crsml.simulation import PROFILES, simulate

    check_output(out, "dir")
    if n < 1:
        raise CrsmlError(f"--n must be at least 1, not {n}")
    if fmt not in ("parquet", "csv"):
        raise CrsmlError(f"--format must be parquet or csv, not {fmt!r}")
    if profile not in PROFILES:
        raise CrsmlError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    con = Console(stderr=True, highlight=False)
    with con.status(f"simulating {n:,} patients"):
        cohort = simulate(n, seed, profile, truth_draws=truth_draws)
        cohort.save(out, fmt=fmt)  # type: ignore[arg-type]
    sev = cohort.crs.groupby("patient_id")["grade"].max().ge(3).mean()
    con.print(f"wrote {out}: {n:,} patients, {len(cohort.measurements):,} measurements, severe CRS {sev:.0%}")
