"""The decision a clinician faces at the landmark, emulated from records (a target trial:
Hernan and Robins, Am J Epidemiol 2016; DESIGN.md, task ``tocilizumab_benefit``).

Eligible: alive, no grade >= 3 CRS and no tocilizumab before ``L``. Treated ("now"): a first
dose in ``[L, L + grace)``; untreated ("not now"): no dose in that window, usual care after it.
Outcomes counted in ``(L, L + horizon]``: days at grade >= 3 (primary) and any grade >= 3.

``window="wide"`` instead calls a patient treated when any dose falls in ``[L, L + 24 h]``:
doses given later because the patient worsened after the landmark then count as "treatment",
which the landmark features cannot see. It exists only to show that bias; never train on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort, has_rows
from crsml.errors import CrsmlError
from crsml.tasks._base import DEFAULT_HORIZON_H, Dataset, Task, excluded_counts, register
from crsml.tasks._risk import SHARED_LIMITATIONS, outcome_window

DEFAULT_GRACE_H = 6.0
WIDE_WINDOW_H = 24.0
DRUG = "tocilizumab"


def given_before(treatments: pd.DataFrame, landmark_h: float, ids: pd.Index | list[str]) -> np.ndarray:
    """For each of ``ids``: given tocilizumab before ``L`` (a dose at ``L`` is the decision, not history)."""
    t = treatments
    return has_rows(t.loc[(t["drug"] == DRUG) & (t["time_h"] < float(landmark_h)), "patient_id"], ids)


def given_before_reason(landmark_h: float) -> str:
    return f"tocilizumab already given before the landmark ({float(landmark_h):g} h)"


def emulate_trial(
    cohort: Cohort,
    landmark_h: float,
    grace_h: float = DEFAULT_GRACE_H,
    horizon_h: float = DEFAULT_HORIZON_H,
    window: str = "emulated",
) -> pd.DataFrame:
    """One row per patient (index ``patient_id``): ``eligible``, ``reason``, ``treated`` (0/1),
    ``severe_days`` and ``severe`` (NaN where not eligible or not followed after ``L``)."""
    if window not in ("emulated", "wide"):
        raise ValueError(f"window must be 'emulated' or 'wide', not {window!r}")
    if grace_h <= 0:
        raise ValueError("grace_h must be positive")
    L = float(landmark_h)
    elig, after, reason = outcome_window(cohort, L, horizon_h)
    ids = elig.index
    toci = cohort.treatments[cohort.treatments["drug"] == DRUG]
    t = toci["time_h"].to_numpy(dtype=float)
    end = L + grace_h if window == "emulated" else L + WIDE_WINDOW_H
    in_window = (t >= L) & ((t < end) if window == "emulated" else (t <= end))
    now = has_rows(toci.loc[in_window, "patient_id"], ids)
    was_treated = given_before(cohort.treatments, L, ids) & elig["eligible"].to_numpy(dtype=bool)
    reason = np.where(was_treated, given_before_reason(L), reason)
    ok = reason == ""
    return pd.DataFrame(
        {
            "eligible": ok,
            "reason": reason.astype(str),
            "treated": now.astype(int),
            "severe_days": np.where(ok, after["days_ge3"].fillna(0).to_numpy(dtype=float), np.nan),
            "severe": np.where(ok, (after["max_grade"].to_numpy(dtype=float) >= 3).astype(float), np.nan),
        },
        index=ids,
    )


@register
class TocilizumabBenefit(Task):
    """Expected severe-CRS days spared by tocilizumab given now (within ``grace_h`` of the
    landmark) rather than usual care, for patients alive, not severe and not yet given it.

    Trains a :class:`~crsml.models.BenefitModel`; scores ``risk`` (grade >= 3 without
    tocilizumab now), ``benefit`` and its interval; SHAP values explain the benefit, in days.

    Parameters
    ----------
    horizon_h : outcome window after the landmark, hours.
    grace_h : "now" is a first dose in ``[L, L + grace_h)``.
    window : ``"emulated"`` (the decision at the landmark) or ``"wide"`` (any dose in 24 h:
        biased on purpose, only to show that bias; never train on it).
    """

    name = "tocilizumab_benefit"
    model_kind = "benefit"
    # benefit_basis: compared (inside the propensity overlap), extrapolated (outside it, from the risk)
    # or prior (the risk times the literature's effect); benefit_note: why, and what the records
    # cannot show about the benefit's direction or size
    score_columns = ("risk", "benefit", "benefit_low", "benefit_high", "benefit_basis", "benefit_note")
    description = (
        "expected severe-CRS days spared by tocilizumab given now, with the risk of grade >= 3 "
        "without it, for patients not yet given tocilizumab"
    )
    treatments_before_landmark = "strict"
    # hardly anyone is treated at the landmark in the default profile, so hardly anyone is inside the overlap
    example_profile = "mixed_practice"

    def __init__(
        self, horizon_h: float = DEFAULT_HORIZON_H, grace_h: float = DEFAULT_GRACE_H, window: str = "emulated"
    ) -> None:
        super().__init__(horizon_h)
        self.grace_h = grace_h
        self.window = window

    def check(self, landmark_h: float) -> None:
        super().check(landmark_h)
        if not self.grace_h > 0:
            raise CrsmlError(f"--grace-h must be above 0 hours, not {self.grace_h:g}")
        if self.window not in ("emulated", "wide"):
            raise CrsmlError(f"window must be 'emulated' or 'wide', not {self.window!r}")

    def eligibility(self, cohort: Cohort, landmark_h: float, base: pd.DataFrame | None = None) -> pd.DataFrame:
        """Landmark eligibility, and not given tocilizumab before ``L`` (the emulated decision)."""
        elig = super().eligibility(cohort, landmark_h, base)
        ok = elig["eligible"].to_numpy(dtype=bool)
        given = given_before(cohort.treatments, landmark_h, elig["patient_id"]) & ok
        return elig.assign(
            eligible=ok & ~given,
            reason=np.where(given, given_before_reason(landmark_h), elig["reason"].to_numpy(dtype=object)),
        )

    def labels(self, cohort: Cohort, landmark_h: float) -> pd.DataFrame:
        """The emulated trial: ``eligible``, ``reason``, ``treated``, ``severe_days``, ``severe``."""
        self.check(landmark_h)
        return emulate_trial(cohort, landmark_h, self.grace_h, self.horizon_h, self.window)

    def prepare(self, cohort: Cohort, landmark_h: float, extra_patient_columns: Sequence[str] = ()) -> Dataset:
        self.check(landmark_h)
        fb = self.feature_builder(landmark_h, extra_patient_columns).fit(cohort)
        X, _ = fb.build(cohort)
        X = X.droplevel("landmark_h")
        trial = self.labels(cohort, landmark_h).reindex(X.index)
        keep = trial["eligible"].to_numpy(dtype=bool)
        counts = {
            "patients": int(len(cohort.patients)),
            "eligible": int(keep.sum()),
            "treated_now": int(trial.loc[keep, "treated"].sum()),
            "excluded": excluded_counts(trial.loc[~keep, "reason"]),
        }
        return Dataset(fb, X[keep], trial[keep], counts)

    def dataset(
        self, cohort: Cohort, landmark_h: float = 48.0, extra_patient_columns: Sequence[str] = ()
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features of the eligible patients (indexed by ``patient_id``) and their trial columns
        ``treated``, ``severe_days`` and ``severe`` (what :meth:`BenefitModel.fit` takes)."""
        d = self.prepare(cohort, landmark_h, extra_patient_columns)
        return d.X, d.y[["treated", "severe_days", "severe"]]

    def card_rows(self, counts: dict[str, Any]) -> dict[str, Any]:
        trim = counts.get("trim", {})
        return {
            "patients in the cohort": counts.get("patients"),
            "eligible at the landmark": counts.get("eligible"),
            "given tocilizumab now (within the grace window)": counts.get("treated_now"),
            "inside the overlap (used to fit the benefit)": trim.get("inside"),
            "outside the overlap": counts.get("trimmed"),
        }

    def limitations(self, counts: dict[str, Any], extra_patient_columns: Sequence[str] = ()) -> list[str]:
        extra = list(extra_patient_columns)
        centre = f"patients columns used as features: {', '.join(extra)}" if extra else "none was given: --extra"
        return [
            f"Estimated from observational records of {counts.get('eligible', '?')} eligible patients, "
            f"{counts.get('treated_now', '?')} of them given tocilizumab at the landmark. 'Not now' is usual care "
            "afterwards as practised in these records: where usual care differs (another centre, a new protocol), "
            "so does the benefit of a dose now. Records pooled from several centres need the centre as a feature "
            f"({centre}).",
            "The benefit assumes no unmeasured confounding: whatever made clinicians give tocilizumab at the "
            "landmark must be among the features. Doses given later, because a patient worsened, are usual care.",
            "benefit_low/benefit_high are about the average benefit of patients with the same features, not one "
            "patient's own course. For a compared benefit from a learner they are the causal forest's interval. "
            "For a benefit taken from the risk (extrapolated, prior, or any when ranking by risk was chosen) "
            "they bound what the records allow: from no benefit (or the harm the effect's interval allows) to "
            "every severe day of a long course (90th percentile of the untreated patients' severe days) times "
            "the upper end of the risk; the risk times an average effect per unit of risk covered the simulated "
            "benefit of only 52-88% of patients, since one patient's effect per unit of risk varies.",
            "Patients outside the overlap of the propensity model (the records hold too few like them treated, "
            "or untreated, to compare) get an extrapolated benefit (benefit_basis extrapolated): their risk of "
            "severe CRS without a dose now times the days spared per unit of risk learned where patients can be "
            "compared (the risk-based approach of the PATH statement, Kent et al. 2020). It assumes the benefit "
            "grows with the risk as it does inside the overlap; nothing in these records can check that for them.",
            "Where the records cannot tell the average benefit from 0, every benefit is prior (benefit_basis "
            "prior): the risk times the relative effect of pre-emptive tocilizumab reported by Kadauke et al. "
            "(J Clin Oncol 2021, risk ratio of grade 4 CRS 0.53, 95% CI 0.21 to 1.34). It ranks patients by risk; "
            "its size is the literature's, not these records'. A patient of a centre not seen in training gets "
            "no benefit (not_eligible).",
            *SHARED_LIMITATIONS,
        ]
