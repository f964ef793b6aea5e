"""The shared real cohort (#25; docs/validation.md): a temporal-style split evaluated end to end, and
the sample-size check at 24, 48 and 72 h.

* Split: the first two thirds of the patients by id develop a severe-CRS model at 48 h; the rest
  judge it (crsml evaluate: flow, discrimination, calibration, net benefit, case mix).
* Sample size: the model trained on the whole cohort at each landmark, and Riley's minimum sample
  size for its candidate predictors, outcome rate and out-of-fold C, against what the cohort has.

    .venv/bin/python experiments/real_cohort_validation.py [--trials 20] [--out out/real_validation]

The cohort is read from ../shared/data/real/ (never copied into the repository); nothing
identifying leaves the process (the report holds aggregates only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import crsml
from crsml.cohort import Cohort

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "bal_daily_cohort.csv"


def subset(cohort: Cohort, ids: set[str]) -> Cohort:
    """The patients ``ids`` of ``cohort`` with all their rows."""
    tables = {}
    for name in ("patients", "measurements", "vitals", "treatments", "crs"):
        df = getattr(cohort, name)
        tables[name] = df[df["patient_id"].astype(str).isin(ids)].reset_index(drop=True)
    return Cohort(**tables, meta=dict(cohort.meta))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "real_validation")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cohort, _ = crsml.import_daily(REAL)
    ids = sorted(cohort.patients["patient_id"].astype(str), key=lambda s: (len(s), s))
    cut = (2 * len(ids)) // 3
    dev, val = subset(cohort, set(ids[:cut])), subset(cohort, set(ids[cut:]))
    print(f"split by patient id: {cut} development patients, {len(ids) - cut} validation patients")
    result = crsml.train(dev, "severe_crs", landmark_h=48.0, trials=args.trials, seed=0, progress=False)
    crsml.export_model(result.model, args.out / "model_first_two_thirds")
    model = crsml.load_model(args.out / "model_first_two_thirds")
    ev = crsml.evaluate(model, val, by=["age_band"])
    crsml.write_evaluation_report(ev, args.out / "report")
    print(ev.flow.to_string())
    print(ev.summary().to_string())
    print(ev.table[["auroc", "auroc_low", "auroc_high"]].round(3).to_string())
    print(ev.decision_differences.round(3).to_string())
    print("case mix:", json.dumps({k: v for k, v in ev.case_mix_summary.items()}, default=str))
    sizes = {}
    for L in (24.0, 48.0, 72.0):
        r = crsml.train(
            cohort,
            "severe_crs",
            landmark_h=L,
            trials=args.trials,
            seed=0,
            progress=False,
            instability_boot=0,
            log=lambda *a: None,
        )
        s = r.model.metadata["sample_size"]
        sizes[L] = s
        print(
            f"L = {L:g} h: has {s['available_n']} patients ({s['available_events']} events); needs {s['required_n']} "
            f"({s['required_events']} events) for {s['parameters']} candidate parameters at outcome rate "
            f"{s['prevalence']:.1%}, R2_CS {s['r2_cs']:.3f} from out-of-fold C {s['c_statistic']:.3f} "
            f"(criteria {s['n_criterion_1']}, {s['n_criterion_2']}, {s['n_criterion_3']})"
        )
    (args.out / "summary.json").write_text(
        json.dumps({"evaluation": ev.to_dict(), "sample_size": sizes}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
