"""Simulator calibration report: simulated statistics beside the published ones.

Writes docs/simulator_calibration.md and logs it (with the figures as metrics) to MLflow.
Run: .venv/bin/python experiments/simulator_calibration.py [--n 5000] [--seed 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from crsml.cohort import crs_episodes
from crsml.features import HAY_FEVER_C, HAY_MCP1_PG_ML, HAY_WINDOW_H
from crsml.simulation import simulate
from crsml.tracking import start

REPO = Path(__file__).resolve().parents[1]


def statistics(c) -> list[tuple[str, float, str, tuple[float, float], str]]:
    """(statistic, simulated, published, accepted range, source) rows."""
    ep = crs_episodes(c.crs).set_index("patient_id")
    pt = c.patients.set_index("patient_id")
    ep = ep.reindex(pt.index)
    maxg = ep["max_grade"].fillna(0)
    hb = pt["marrow_blast_pct"] >= 5
    first3 = c.crs[c.crs["grade"] >= 3].groupby("patient_id")["time_h"].min() / 24
    tx = c.treatments
    toci = tx.loc[tx["drug"] == "tocilizumab", "patient_id"].unique()
    m = c.measurements
    peak = m.groupby(["patient_id", "analyte"])["value"].max().unstack().reindex(pt.index)
    sev = maxg >= 3
    onset = ep["onset_h"] / 24
    cd28 = pt["costim"] == "cd28"
    cart_day = m[m["analyte"] == "cart_copies"].sort_values("value").groupby("patient_id").tail(1)["time_h"] / 24
    # Hay rule (Hay et al., Blood 2017): fever >= 38.9 C and MCP-1 >= 1343.5 pg/mL within 36 h
    early = m[(m["time_h"] <= HAY_WINDOW_H) & (m["analyte"] == "mcp1")].groupby("patient_id")["value"].max()
    v = c.vitals
    fever = v[v["time_h"] <= HAY_WINDOW_H].groupby("patient_id")["temp_c"].max()
    hay = (fever.reindex(pt.index) >= HAY_FEVER_C) & (early.reindex(pt.index) >= HAY_MCP1_PG_ML)
    g4 = maxg >= 4
    return [
        ("CRS any grade, %", 100 * (maxg >= 1).mean(), "77 (ELIANA)", (60, 95), "Maude et al., NEJM 2018"),
        (
            "CRS grade >= 3, %",
            100 * sev.mean(),
            "22 (real cohort); 24-26 (Park, ZUMA-3)",
            (18, 30),
            "Wei et al. 2023; Park et al., NEJM 2018",
        ),
        ("grade >= 3 with >= 5% blasts, %", 100 * sev[hb].mean(), "about 41", (30, 50), "Park et al., NEJM 2018"),
        ("grade >= 3 with < 5% blasts, %", 100 * sev[~hb].mean(), "about 5", (1, 12), "Park et al., NEJM 2018"),
        ("onset day, median, CD28", onset[cd28].median(), "1-3", (1, 3), "literature.md (onset by costimulation)"),
        ("onset day, median, 4-1BB", onset[~cd28].median(), "2-5", (2, 5), "literature.md (onset by costimulation)"),
        ("first severe day, median", first3.median(), "5 (range 2-14)", (3, 7), "shared real cohort (Wei et al. 2023)"),
        (
            "CRS duration, days, median",
            ep.loc[maxg >= 1, "days_ge1"].median(),
            "8 (ELIANA)",
            (5, 10),
            "Maude et al., NEJM 2018",
        ),
        (
            "tocilizumab use, %",
            100 * len(toci) / len(pt),
            "37-48 (ELIANA); about 80 (ZUMA-3); 38 (seed study)",
            (35, 80),
            "Maude 2018; ZUMA-3; Zhou et al. 2025",
        ),
        ("peak IL-6 severe, pg/mL, median", peak.loc[sev, "il6"].median(), "thousands", (1000, 10000), "literature.md"),
        (
            "peak IL-6 non-severe, pg/mL, median",
            peak.loc[~sev, "il6"].median(),
            "tens to hundreds",
            (10, 1000),
            "literature.md",
        ),
        (
            "peak IFN-gamma severe, pg/mL, median",
            peak.loc[sev, "ifng"].median(),
            "hundreds to thousands",
            (100, 5000),
            "literature.md",
        ),
        ("peak CRP severe, mg/L, median", peak.loc[sev, "crp"].median(), "100-300", (100, 300), "literature.md"),
        (
            "peak ferritin severe, ng/mL, median",
            peak.loc[sev, "ferritin"].median(),
            "thousands to tens of thousands",
            (1000, 50000),
            "literature.md",
        ),
        ("CAR-T expansion peak day, median", cart_day.median(), "7-14", (7, 14), "literature.md"),
        (
            "grade 4 among grade >= 3, %",
            100 * g4[sev].mean(),
            "23 (7 of 31, real cohort)",
            (10, 40),
            "shared real cohort (Wei et al. 2023)",
        ),
        ("Hay rule, sensitivity for grade >= 4, %", 100 * hay[g4].mean(), "100", (80, 100), "Hay et al., Blood 2017"),
        (
            "Hay rule, specificity for grade >= 4, %",
            100 * (~hay[~g4]).mean(),
            "95",
            (85, 100),
            "Hay et al., Blood 2017",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "simulator_calibration.md")
    args = ap.parse_args()
    cohort = simulate(args.n, args.seed, truth_draws=2, landmarks=(48.0,))
    rows = statistics(cohort)
    table = pd.DataFrame(rows, columns=["statistic", "simulated", "published", "range", "source"])
    table["within"] = [lo <= v <= hi for v, (lo, hi) in zip(table["simulated"], table["range"], strict=True)]
    lines = [
        "# Simulator calibration",
        "",
        f"`.venv/bin/python experiments/simulator_calibration.py --n {args.n} --seed {args.seed}` "
        "(generated; do not edit). Accepted range: where we judge the simulated figure consistent "
        "with the published one.",
        "",
        "| statistic | simulated | published | accepted range | within | source |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.statistic} | {r.simulated:.1f} | {r.published} | {r.range[0]:g}-{r.range[1]:g} | "
            f"{'yes' if r.within else '**no**'} | {r.source} |"
        )
    lines += [
        "",
        "## Gaps explained",
        "",
        "- Any-grade CRS runs higher than ELIANA's 77% because the simulated population is B-ALL with",
        "  55% high burden; the real shared cohort has 106/139 = 76% with any CRS.",
        "- ELIANA graded on the Penn scale (grade 3-4: 46-47%), which is not comparable to ASTCT;",
        "  the ASTCT-graded figures (real cohort 22%, Park 26%) are the targets.",
        "- Peak values are medians of the simulated draws (daily in week 1, then every two days),",
        "  not of the latent curves; assay noise (CV 15%) and limits of quantification apply.",
        "- **Not calibrated: grade 4.** Severe CRS in the simulator is almost always grade 3 (one",
        "  vasopressor or high-flow oxygen); several vasopressors or positive pressure are rare, while",
        "  7 of the real cohort's 31 severe patients reached grade 4. Every label of crsml is grade",
        "  >= 3, so no model's label depends on the split between 3 and 4.",
        "- **Not calibrated: the Hay rule.** The simulator's MCP-1 follows the current myeloid",
        "  activation (`mcp1_base * (1 + 0.9 * myeloid)`, baseline median 350 pg/mL), which in the",
        "  first 36 h is still low even in the patients who later reach grade 4 (median 645 pg/mL",
        "  in 3,000 simulated patients); few cross 1343.5 pg/mL that early. The Hay rule therefore",
        "  fires rarely and ranks simulated patients no better than chance (the demo's table), which",
        "  says nothing about the rule on real patients. MCP-1 is only a measurement here, never a",
        "  driver of the course. The shared real cohort has no MCP-1, so the rule is not shown there.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    mlflow = start("simulator_calibration")
    with mlflow.start_run(run_name=f"calibration_n{args.n}_seed{args.seed}"):
        mlflow.log_params({"n": args.n, "seed": args.seed, "profile": "b_all"})
        for i, r in enumerate(table.itertuples(index=False)):
            key = "".join(ch if ch.isalnum() else "_" for ch in r.statistic).strip("_")
            mlflow.log_metric(f"{i:02d}_{key}"[:250], float(r.simulated))
        mlflow.log_metric("n_within_range", float(table["within"].sum()))
        mlflow.log_artifact(str(args.out))
    print(f"{int(table['within'].sum())}/{len(table)} within range; logged to MLflow experiment simulator_calibration")
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
