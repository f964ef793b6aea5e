"""`make demo`: the main job end to end on an embedded default.

1. simulate a cohort (2,000 patients, seed 1) with known truth, write and validate it;
2. build landmark features at 24, 48 and 72 h and report eligibility;
3. train a severe-CRS model at 48 h (Optuna, nested cross-validation, baselines, MLflow in
   mlruns/) and print its out-of-fold evaluation table;
4. score a fresh simulated batch (with one spoiled row) and write the HTML model card;
5. import the shared real cohort when it sits beside the repository and summarise it.
Outputs go to out/demo/ and models/demo_severe_crs_L48 (both ignored by git).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

import crsml
from crsml.adapters import import_daily, summarise
from crsml.cli import print_result
from crsml.cohort import crs_episodes, read_raw_tables
from crsml.tracking import quiet

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"
OUT = REPO / "out" / "demo"
MODEL = REPO / "models" / "demo_severe_crs_L48"


def main() -> int:
    quiet()
    con = Console(highlight=False, soft_wrap=True)
    con.rule("1. simulate a cohort (crsml simulate --n 2000 --seed 1)")
    with con.status("simulating 2,000 patients"):
        crsml.simulate(2000, seed=1).save(OUT / "sim")
    sim, report = crsml.Cohort.load_with_report(OUT / "sim")
    ep = crs_episodes(sim.crs)
    con.print(
        f"wrote {(OUT / 'sim').relative_to(REPO)}: valid ({len(report.errors)} errors, {len(report.warnings)} "
        f"warnings); "
        f"{len(sim.patients):,} patients, {len(sim.measurements):,} measurements, "
        f"{len(sim.vitals):,} vital-sign rows; CRS any grade {ep['max_grade'].ge(1).sum() / len(sim.patients):.0%}, "
        f"grade >= 3 {ep['max_grade'].ge(3).sum() / len(sim.patients):.0%}"
    )

    con.rule("2. landmark features (crsml features --landmark-h 24 --landmark-h 48 --landmark-h 72)")
    fb = crsml.LandmarkFeatures(landmark_h=[24, 48, 72]).fit(sim)
    X, elig = fb.build(sim)
    counts = elig.groupby("landmark_h")["eligible"].agg(["sum", "size"])
    for L, row in counts.iterrows():
        con.print(
            f"  L = {L:g} h: {row['sum']:,} of {row['size']:,} patients eligible; "
            f"the others are reported with their reason"
        )
    con.print(f"  {X.shape[1]} features per patient; dictionary in docs/features.md")

    con.rule(
        f"3. train severe_crs at 48 h (crsml train --task severe_crs --landmark-h 48 --trials 20 --model-out "
        f"{MODEL.relative_to(REPO)})"
    )
    result = crsml.train(sim, "severe_crs", landmark_h=48, trials=20, seed=0, log=con.print)
    crsml.export_model(result.model, MODEL)  # models/NAME: MLflow pyfunc + model card
    run_id = crsml.log_training(result, log=con.print, model_dir=MODEL)  # MLflow run + registered version
    con.print(f"model written to {MODEL}")
    print_result(con, result)

    con.rule("4. score a new batch (crsml score) and write the model card (crsml report)")
    batch = OUT / "new_batch"
    crsml.simulate(500, seed=2, truth_draws=0).save(batch, fmt="csv")
    m = pd.read_csv(batch / "measurements.csv", dtype={"value": "string"})
    m.loc[0, "unit"] = "mmol/furlong"
    m.to_csv(batch / "measurements.csv", index=False)
    scores, _ = crsml.scoring.score_tables(crsml.load_model(MODEL), read_raw_tables(batch), explain=5, progress=True)
    scores.to_csv(OUT / "scores.csv", index=False)
    con.print(
        f"{len(scores)} patients in, {len(scores)} rows out: "
        + ", ".join(f"{k} {v}" for k, v in scores["status"].value_counts().items())
    )
    con.print(
        scores[scores["status"] == "invalid"][["patient_id", "status", "reason"]].to_string(index=False), markup=False
    )
    top = scores[scores["status"] == "ok"].nlargest(3, "risk")
    con.print(
        top[["patient_id", "risk", "driver_1", "driver_1_shap", "driver_1_value"]].round(3).to_string(index=False),
        markup=False,
    )
    card = crsml.write_model_card(crsml.load_model(MODEL), OUT / "report")

    con.rule("5. the shared real cohort (crsml import-daily)")
    if REAL.exists():
        real, report = import_daily(REAL)
        real.save(OUT / "real")
        con.print(f"{len(report.warnings)} data-quality warnings, e.g.:")
        for p in report.warnings[:4]:
            con.print("  " + str(p), markup=False)
        con.print(json.dumps(summarise(crsml.read_cohort(OUT / "real")), indent=2))
    else:
        con.print(f"shared real cohort not found at {REAL}; skipped")
    con.rule("where to look")
    con.print(
        f"model:        {MODEL.relative_to(REPO)}\nscores:       {(OUT / 'scores.csv').relative_to(REPO)}\n"
        f"model card:   {card.relative_to(REPO)}\n"
        f"MLflow:       .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db  (run {run_id})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
