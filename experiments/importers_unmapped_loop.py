"""The unmapped-codes loop of docs/importers.md, run for real: a CDM written the way an ETL writes
it (tests/test_importers_etl.py, oxygen devices under a ward's local vocabulary, no recorded
grade), imported; the devices of import_unmapped.csv given their targets; imported again.

Run: .venv/bin/python experiments/importers_unmapped_loop.py [--out DIR]
Prints each command and its output, as docs/importers.md shows them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_importers_etl import CENTRE_MAP, truth, write_cdm  # noqa: E402


def run(args: list[str], cwd: Path) -> None:
    print("$ crsml " + " ".join(args))
    r = subprocess.run([sys.executable, "-m", "crsml", *args], cwd=cwd, capture_output=True, text=True)
    print((r.stdout + r.stderr).rstrip())
    print(f"(exit {r.returncode})\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    d = ap.parse_args().out or Path(tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    write_cdm(d / "etl.duckdb", truth(), grades=False, conditions=False, local_devices=True)
    (d / "centre.toml").write_text(CENTRE_MAP)
    common = ["import-omop", "--db", "duckdb:///etl.duckdb", "--map", "centre.toml"]
    run([*common, "--require-grades", "--out", "cohort"], d)
    run([*common, "--out", "cohort"], d)
    print("$ head -4 cohort/import_unmapped.csv")
    print("\n".join((d / "cohort" / "import_unmapped.csv").read_text().splitlines()[:4]) + "\n")
    u = pd.read_csv(d / "cohort" / "import_unmapped.csv", dtype=str, keep_default_na=False)
    targets = {"O2-NC": "nasal_cannula", "O2-HF": "high_flow_nasal_cannula", "O2-BIPAP": "bipap"}
    u["target"] = u["code"].map(targets).fillna("")
    u.to_csv(d / "filled.csv", index=False)
    print("(the three device rows given targets nasal_cannula, high_flow_nasal_cannula, bipap: filled.csv)\n")
    run([*common, "--map", "filled.csv", "--out", "cohort"], d)


if __name__ == "__main__":
    main()
