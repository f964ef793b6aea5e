"""A patient's risk trajectory on one time axis with the course that explains it: risk at each
landmark of a supermodel's grid above, CRS grade, fever, oxygen, vasopressors and anti-cytokine
doses below."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import FEVER_C, Cohort, hypoxia_grade


def plot_trajectory(trajectory: pd.DataFrame, cohort: Cohort, patient_id: str, title: str | None = None) -> Any:
    """One patient's trajectory (rows of :func:`crsml.score_trajectory`) above their recorded
    course: ASTCT grade, temperature (fever at >= 38 C shaded), oxygen support as its ASTCT
    grade, vasopressors, and each tocilizumab (and other anti-cytokine or steroid) dose as a
    vertical line through both panels. Returns the risk panel's matplotlib Axes (``.figure``
    to save it); the figure is drawn outside pyplot.

    The title names the patient: the picture is for the user's own files, never for MLflow, a
    model card or a report that leaves the centre (pass ``title`` to name it otherwise).
    """
    from matplotlib.figure import Figure

    rows = trajectory[trajectory["patient_id"].astype(str) == str(patient_id)]
    if rows.empty:
        raise KeyError(f"no trajectory rows for that patient ({len(trajectory)} rows searched)")
    fig = Figure(figsize=(7.2, 5.6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    ok = rows[rows["status"] == "ok"]
    top.plot(ok["landmark_h"], ok["risk"], "o-", lw=2, c="C3", label="predicted risk")
    closed = rows[rows["status"] != "ok"]
    for t in closed["landmark_h"].dropna():
        top.axvspan(t - 2, t + 2, color="0.85")
    top.set(ylabel="risk", ylim=(0, 1), title=title if title is not None else f"patient {patient_id}")
    if len(closed):  # one legend entry per reason, without the landmark it names
        for why in sorted(set(closed["reason"].astype(str).str.replace(r"\s*\([^()]*\)$", "", regex=True))):
            top.fill_between([], [], color="0.85", label=f"not scored: {why}"[:70])

    pid = str(patient_id)
    crs = cohort.crs_grades()
    crs = crs[crs["patient_id"].astype(str) == pid].sort_values("time_h")
    v = cohort.vitals[cohort.vitals["patient_id"].astype(str) == pid].sort_values("time_h")
    tx = cohort.treatments[cohort.treatments["patient_id"].astype(str) == pid]
    if len(crs):
        bottom.step(crs["time_h"], crs["grade"], where="post", c="k", lw=2, label="ASTCT grade")
    if len(v):
        bottom.step(v["time_h"], hypoxia_grade(v), where="post", c="C0", label="oxygen support (grade)")
        bottom.step(v["time_h"], v["vasopressors"].fillna(0), where="post", c="C2", label="vasopressors (count)")
        temp = v["temp_c"].to_numpy(dtype=float)
        twin = bottom.twinx()
        twin.plot(v["time_h"], temp, ".", c="C1", ms=4, label="temperature")
        fever = v["time_h"].to_numpy(dtype=float)[temp >= FEVER_C]
        for t in fever:
            bottom.axvspan(t - 1, t + 1, color="C1", alpha=0.08)
        twin.set_ylabel("temperature (C)")
    for drug, t in zip(tx["drug"].astype(str), tx["time_h"].to_numpy(dtype=float), strict=True):
        for ax in (top, bottom):
            ax.axvline(t, c="C4" if drug == "tocilizumab" else "C5", ls="--", lw=1)
    drugs = sorted(set(tx["drug"].astype(str)))
    if drugs:
        top.plot([], [], c="C4", ls="--", label="tocilizumab dose")
        if set(drugs) - {"tocilizumab"}:
            top.plot([], [], c="C5", ls="--", label="other anti-cytokine or steroid dose")
    top.legend(fontsize=7, loc="lower right")
    bottom.set(xlabel="hours after infusion", ylabel="grade / count", ylim=(-0.2, 5.2))
    bottom.legend(fontsize=7, loc="upper left")
    last = np.nanmax([rows["landmark_h"].max(), *(x["time_h"].max() for x in (crs, v) if len(x))])
    bottom.set_xlim(0, last + 6)
    return top
