"""External validation and updating on simulated centres (#25; docs/validation.md).

Develop a severe-CRS model at 48 h on one simulated population (profile b_all), judge it on another
centre whose case mix and outcome rate differ (profile other_centre), update it there with the
closed test, and judge the updated model on a third, independent cohort of that centre.

    .venv/bin/python experiments/external_validation.py [--out out/external_validation] [--trials 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import crsml

LANDMARK_H = 48.0


def line(name: str, result: crsml.EvaluationResult) -> dict[str, str]:
    r = result.model_row
    f = {
        m: f"{r[m]:.3f} ({r[m + '_low']:.3f} to {r[m + '_high']:.3f})"
        for m in ("auroc", "oe", "cal_intercept", "cal_slope", "ici", "brier")
    }
    print(f"{name}: " + "; ".join(f"{k} {v}" for k, v in f.items()))
    return f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("out/external_validation"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dev = crsml.simulate(args.n, seed=101, profile="b_all", truth_draws=0)
    centre = crsml.simulate(args.n, seed=202, profile="other_centre", truth_draws=0)
    later = crsml.simulate(2 * args.n, seed=303, profile="other_centre", truth_draws=0)
    result = crsml.train(dev, "severe_crs", landmark_h=LANDMARK_H, trials=args.trials, seed=0, progress=False)
    crsml.export_model(result.model, args.out / "model_dev")
    model = crsml.load_model(args.out / "model_dev")
    figures = {}
    apparent = crsml.evaluate(model, dev, n_boot=args.n_boot)
    figures["development patients (apparent)"] = line("development patients (apparent)", apparent)
    ext = crsml.evaluate(model, centre, by=["age_band", "sex"], n_boot=args.n_boot)
    figures["other centre, original model"] = line("other centre, original model", ext)
    crsml.write_evaluation_report(ext, args.out / "report_other_centre")
    print("case mix:", ext.case_mix_summary["kind"], f"membership C {ext.case_mix_summary['membership_c']:.3f}")
    up = crsml.update(model, centre, method="auto")
    print(up.summary().round(4).to_string())
    crsml.export_model(up.model, args.out / "model_updated")
    updated = crsml.load_model(args.out / "model_updated")
    after = crsml.evaluate(updated, later, n_boot=args.n_boot)
    figures["independent cohort of the other centre, updated model"] = line(
        "independent cohort of the other centre, updated model", after
    )
    before_later = crsml.evaluate(model, later, n_boot=args.n_boot)
    figures["independent cohort of the other centre, original model"] = line(
        "independent cohort of the other centre, original model", before_later
    )
    crsml.write_evaluation_report(after, args.out / "report_updated")
    summary = {
        "figures": figures,
        "update": {
            "method": up.method,
            "chosen_by": up.chosen_by,
            "tests": up.tests.round(6).reset_index().to_dict(orient="records"),
            "intercept": up.lineage.get("intercept"),
            "slope": up.lineage.get("slope"),
        },
        "case_mix": ext.case_mix_summary,
        "flow_other_centre": ext.flow["n"].to_dict(),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    citl = after.model_row
    ok = (
        citl["cal_intercept_low"] <= 0 <= citl["cal_intercept_high"]
        and citl["cal_slope_low"] <= 1 <= citl["cal_slope_high"]
    )
    found = not (ext.model_row["cal_intercept_low"] <= 0 <= ext.model_row["cal_intercept_high"])
    print(
        f"miscalibration found at the other centre (CITL interval excludes 0): {found}; after the update, CITL "
        f"interval includes 0 and slope interval includes 1 on the independent cohort: {ok}"
    )


if __name__ == "__main__":
    main()
