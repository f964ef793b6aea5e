"""A batch of 20,000 simulated patients with a few spoiled rows, scored by the local and the
Dask engine: every patient comes back once, the spoiled ones ``invalid`` with reasons, and the
two engines give identical output.

    .venv/bin/python experiments/score_batch_check.py [--model models/demo_severe_crs_L48]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from crsml.cohort import read_raw_tables
from crsml.scoring import score_tables
from crsml.simulation import simulate
from crsml.tracking import load_model

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "demo_severe_crs_L48")
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    bundle = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "batch"
        simulate(args.n, seed=123, truth_draws=0).save(d, fmt="csv")
        m = pd.read_csv(d / "measurements.csv", dtype={"value": "string"})
        m.loc[10, "unit"] = "bananas"
        m.loc[m.index[m["patient_id"] == "SIM000100"][0], "value"] = "haemolysed"
        m.to_csv(d / "measurements.csv", index=False)
        v = pd.read_csv(d / "vitals.csv")
        v.loc[v.index[v["patient_id"] == "SIM000200"][0], "temp_c"] = 55.0
        v.to_csv(d / "vitals.csv", index=False)
        raw = read_raw_tables(d)
        t = time.perf_counter()
        local, _ = score_tables(bundle, raw, explain=5, chunk_patients=5000)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        dask, _ = score_tables(bundle, raw, explain=5, chunk_patients=5000, engine="dask")
        t_dask = time.perf_counter() - t
    ids = raw["patients"]["patient_id"]
    print(
        f"{len(ids):,} patients in, {len(local):,} rows out; each patient once: "
        f"{local['patient_id'].is_unique and set(local['patient_id']) == set(ids)}"
    )
    print(local["status"].value_counts().to_dict())
    print(local[local["status"] == "invalid"][["patient_id", "reason"]].to_string(index=False))
    same = local.equals(dask)
    print(f"local {t_local:.1f} s, dask LocalCluster {t_dask:.1f} s; identical output: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
