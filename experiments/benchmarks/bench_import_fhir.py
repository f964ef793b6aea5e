"""Import a FHIR R4 bulk export (NDJSON) of simulated patients, against plain ``json.loads`` of its lines.

Target (issue 36): ``crsml import-fhir`` within 5x of ``json.loads`` of the same lines, every element
crsml reads still validated. The export is written once (``crsml export --format fhir``); the import
(``crsml.adapters.import_fhir``: parse, validate, map, assemble and validate the cohort) and the
plain parse are timed on it, alternately, ``--repeats`` times each; the best of each is printed.
Run: .venv/bin/python experiments/benchmarks/bench_import_fhir.py [--patients 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import crsml
from crsml.adapters import export_fhir, import_fhir, read_fhir


def plain(directory: Path) -> int:
    n = 0
    for f in sorted(directory.glob("*.ndjson")):
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                json.loads(line)
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=36)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        written = export_fhir(crsml.simulate(args.patients, seed=args.seed), d)
        took = time.perf_counter() - t
        print(f"exported {sum(written.values()):,} resources of {args.patients} patients in {took:.1f} s")
        best = {"json.loads": float("inf"), "read_fhir": float("inf"), "import_fhir": float("inf")}
        for _ in range(args.repeats):
            t = time.perf_counter()
            n = plain(d)
            best["json.loads"] = min(best["json.loads"], time.perf_counter() - t)
            t = time.perf_counter()
            read_fhir(d)
            best["read_fhir"] = min(best["read_fhir"], time.perf_counter() - t)
            t = time.perf_counter()
            import_fhir(d)
            best["import_fhir"] = min(best["import_fhir"], time.perf_counter() - t)
    for what, s in best.items():
        print(f"{what:12s} {s:7.2f} s  {n / s:10,.0f} resources/s  {s / best['json.loads']:5.1f}x json.loads")


if __name__ == "__main__":
    main()
