"""Risk tasks: a binary outcome in the window after the landmark, from the ``crs`` grades.

A patient is labelled only when eligible at ``L`` (alive, no grade >= 3 by ``L``) and with at
least one graded observation after ``L``; otherwise the label is missing and ``reason`` says why.
Features see rows with ``time_h <= L``; labels only rows with ``time_h > L`` (or, for a total
such as days of CRS, the part before ``L`` that the features already carry).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort, crs_episodes, eligibility, landmarks
from crsml.errors import CrsmlError
from crsml.features import INDEX
from crsml.tasks._base import Dataset, Task, excluded_counts

#: fewest labelled patients, and of each class, a risk model is trained on
MIN_LABELLED = 20
MIN_PER_CLASS = 5


def grid_text(grid: Sequence[float]) -> str:
    """A landmark grid for people: ``12-120 h (10 landmarks)``."""
    g = landmarks(grid)
    return f"{g[0]:g} h" if len(g) == 1 else f"{min(g):g}-{max(g):g} h ({len(g)} landmarks)"


def outcome_window(
    cohort: Cohort, landmark_h: float, horizon_h: float, crs: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Eligibility at ``L`` (indexed by patient), each patient's CRS summary over
    ``(L, L + horizon]`` aligned to it, and why a patient has no outcome ('' when it has one:
    eligible and with a graded observation after ``L``)."""
    L = float(landmark_h)
    crs = cohort.crs_grades() if crs is None else crs
    elig = eligibility(cohort, L, crs=crs).set_index("patient_id")
    after = crs_episodes(crs, start_h=L, end_h=L + horizon_h).set_index("patient_id").reindex(elig.index)
    followed = after["n_obs"].fillna(0).to_numpy() > 0
    reason = np.where(
        ~elig["eligible"].to_numpy(dtype=bool),
        elig["reason"].to_numpy(dtype=object),
        np.where(followed, "", f"no CRS grade recorded after the landmark ({L:g} h)"),
    )
    return elig, after, reason


class RiskTask(Task):
    """A task whose label is a binary outcome after the landmark; trains a calibrated
    :class:`~crsml.models.XGBRiskClassifier` and scores ``risk``.

    Subclasses implement :meth:`outcome`.
    """

    model_kind = "risk"
    score_columns = ("risk",)

    @abstractmethod
    def outcome(self, crs: pd.DataFrame, after: pd.DataFrame, ids: pd.Index, landmark_h: float) -> np.ndarray:
        """0/1 outcome of every patient in ``ids`` (``after``: their CRS summary over
        ``(L, L + horizon]``; ``crs``: every graded observation)."""

    def labels(
        self, cohort: Cohort, landmark_h: float | Sequence[float], crs: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """One row per patient (and landmark, for a grid): ``label`` (1.0/0.0, NaN when not
        labelled) and ``reason``, indexed by ``(patient_id, landmark_h)`` like the feature frame.

        At each landmark of a grid the label is the task's at that landmark alone: eligible
        there, the outcome within the horizon after it (the rows a landmark supermodel stacks).
        """
        crs = cohort.crs_grades() if crs is None else crs
        if np.ndim(landmark_h) > 0:
            return pd.concat([self.labels(cohort, L, crs) for L in landmarks(landmark_h)])
        self.check(landmark_h)
        L = float(landmark_h)
        elig, after, reason = outcome_window(cohort, L, self.horizon_h, crs)
        ids = elig.index
        y = np.asarray(self.outcome(crs, after, ids, L), dtype=float)
        y = np.where(reason == "", y, np.nan)
        return pd.DataFrame(
            {"label": y, "reason": reason.astype(str)},
            index=pd.MultiIndex.from_arrays([ids, np.full(len(ids), L)], names=INDEX),
        )

    def prepare(
        self, cohort: Cohort, landmark_h: float | Sequence[float], extra_patient_columns: Sequence[str] = ()
    ) -> Dataset:
        """Features and labels at ``landmark_h``; for a grid of landmarks, every eligible and
        labelled patient at every landmark, stacked (one row per patient and landmark, the
        landmark a feature), with the counts of each landmark in ``counts["by_landmark"]``."""
        for L in landmarks(landmark_h):
            self.check(L)
        fb = self.feature_builder(landmark_h, extra_patient_columns).fit(cohort)
        X, _ = fb.build(cohort)
        labels = self.labels(cohort, landmark_h).reindex(X.index)
        keep = labels["label"].notna().to_numpy()
        y = labels["label"].to_numpy()[keep].astype(int)
        counts = {
            "patients": int(len(cohort.patients)),
            "labelled": int(keep.sum()),
            "events": int(y.sum()),
            "event_rate": float(y.mean()) if len(y) else float("nan"),
            "excluded": excluded_counts(labels.loc[~keep, "reason"]),
        }
        if np.ndim(landmark_h) == 0:
            where = f"at {landmark_h:g} h"
        else:
            at = X.index.get_level_values("landmark_h").to_numpy(dtype=float)
            counts["labelled_patients"] = int(X.index.get_level_values("patient_id")[keep].nunique())
            counts["by_landmark"] = {
                f"{L:g}": {
                    "labelled": int((keep & (at == L)).sum()),
                    "events": int(labels["label"].to_numpy()[at == L][keep[at == L]].sum()),
                }
                for L in landmarks(landmark_h)
            }
            where = f"on the landmark grid {grid_text(landmark_h)}"
        if len(y) < MIN_LABELLED or min(y.sum(), len(y) - y.sum()) < MIN_PER_CLASS:
            raise CrsmlError(
                f"too few labelled patients to train {self.name} {where}: "
                f"{len(y)} labelled, {int(y.sum())} with the outcome (need {MIN_LABELLED} and "
                f"{MIN_PER_CLASS} of each class)"
            )
        Xk = X[keep]
        return Dataset(fb, Xk, pd.Series(y, index=Xk.index, name=self.name), counts)

    def dataset(
        self, cohort: Cohort, landmark_h: float = 48.0, extra_patient_columns: Sequence[str] = ()
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Features and 0/1 labels of the labelled patients, indexed by ``(patient_id, landmark_h)``."""
        d = self.prepare(cohort, landmark_h, extra_patient_columns)
        return d.X, d.y

    def card_rows(self, counts: dict[str, Any]) -> dict[str, Any]:
        return {
            "patients in the cohort": counts.get("patients"),
            "labelled at the landmark": counts.get("labelled"),
            "with the outcome": counts.get("events"),
            "outcome rate": f"{counts.get('event_rate', float('nan')):.1%}",
        }

    def limitations(self, counts: dict[str, Any], extra_patient_columns: Sequence[str] = ()) -> list[str]:
        return [
            f"Trained on {counts.get('labelled', '?')} patients from one source; performance at another centre, "
            "with other products, grading habits or sampling schedules, is unknown until checked there.",
            "Out-of-fold figures estimate performance on new patients like these; they are not an external validation.",
            "Tocilizumab and steroids given before the landmark change the course; the risk is under the care "
            "patients actually received, not without treatment.",
            *SHARED_LIMITATIONS,
            "Patients with no CRS grade after the landmark were left out of training (no label).",
        ]


SHARED_LIMITATIONS = (
    "Daily tables stamp events at whole days, so the landmark sees up to that day's values.",
    "SHAP values explain the model, not the disease: a feature that drives a prediction is not a cause.",
)
