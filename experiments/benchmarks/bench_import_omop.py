"""Import an OMOP CDM of 50,000 simulated patients (about 10 million MEASUREMENT rows) from DuckDB.

Target (issue 26): under 60 s on the 2-core reference machine. The CDM is built once by simulating
a cohort and exporting it (``crsml export --format omop``); only the import is timed.
Run: .venv/bin/python experiments/benchmarks/bench_import_omop.py [--patients N] [--db PATH]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import crsml
from crsml.adapters import export_omop, import_omop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=50_000)
    ap.add_argument("--db", type=Path, default=None, help="CDM file to build or reuse (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=26)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "cdm.duckdb"
        if not db.exists():
            t = time.perf_counter()
            cohort = crsml.simulate(args.patients, seed=args.seed)
            written = export_omop(cohort, f"duckdb:///{db}")
            del cohort
            print(
                f"built {db.name}: {written['person']:,} persons, {written['measurement']:,} MEASUREMENT rows, "
                f"{written['observation']:,} OBSERVATION rows in {time.perf_counter() - t:.1f} s"
            )
        t = time.perf_counter()
        cohort, report = import_omop(f"duckdb:///{db}")
        took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import-omop (DuckDB): {took:.1f} s for {report.counts['rows_read']:,} rows of "
        f"{report.counts['patients_read']:,} patients ({report.counts['rows_read'] / took:,.0f} rows/s); "
        f"peak RSS {peak:,.0f} MiB; {len(cohort.measurements):,} measurements, {len(cohort.vitals):,} vitals"
    )


if __name__ == "__main__":
    main()
