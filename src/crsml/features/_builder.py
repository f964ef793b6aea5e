"""The landmark feature transformer: a :class:`~crsml.cohort.Cohort` in, one row per eligible
patient (and landmark) out, using only rows with ``time_h <= L``."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import StrOptions

from crsml.cohort import CANONICAL_UNITS, Cohort, eligibility, fill_value_table, index_in, landmarks
from crsml.features._clinical import (
    CLINICAL_FEATURES,
    category_feature,
    clinical_features,
    extra_categories,
)
from crsml.features._course import COURSE_FEATURES, course_features, per_patient
from crsml.features._kinetics import KINETIC_STATS, kinetic_features
from crsml.features._scores import HAY_WINDOW_H, SCORE_ANALYTES, SCORE_FEATURES, score_features

INDEX = ["patient_id", "landmark_h"]

#: the feature a landmark supermodel adds: the landmark itself (van Houwelingen, Scand J Stat 2007)
LANDMARK_TIME_FEATURE = "landmark_time_h"


class LandmarkFeatures(TransformerMixin, BaseEstimator):
    """Landmark features of a cohort (kinetics, vitals and course, clinical, published scores).

    Parameters
    ----------
    landmark_h : hours after infusion, or several landmarks (one row per patient and landmark).
    analytes : analytes to build kinetics for; ``"auto"`` takes those present when fitting.
    extra_patient_columns : further ``patients`` columns as features: numeric and true/false
        ones pass through; a text one (a centre, a product) becomes one indicator per value seen
        when fitting (``extra_site=centre_a``), a blank or unseen value leaving them missing.
    mask_fill_values : treat values flagged as suspected fill values when fitting as not drawn.
    treatments_before_landmark : ``"strict"`` sees treatments with ``time_h < L`` only (the
        tocilizumab decision at ``L`` is studied, not history); ``"inclusive"`` sees ``<= L``.
    landmark_time : add the landmark itself as the last feature (``landmark_time_h``): what a
        landmark supermodel, fitted on every patient at every landmark of a grid, learns the
        change of risk with time from (van Houwelingen & Putter 2011).

    Attributes
    ----------
    analytes_ : analytes that get kinetic features.
    fill_values_ : per analyte, the suspected fill values treated as not drawn.
    extra_categories_ : per text column named in ``extra_patient_columns``, its values seen in fitting.
    feature_names_out_ : the feature columns, in order.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "landmark_h": [Real, tuple, list, np.ndarray],
        "analytes": [StrOptions({"auto"}), tuple, list],
        "extra_patient_columns": [tuple, list],
        "mask_fill_values": ["boolean"],
        "treatments_before_landmark": [StrOptions({"strict", "inclusive"})],
        "landmark_time": ["boolean"],
    }

    def __init__(
        self,
        landmark_h: float | Sequence[float] = 48.0,
        analytes: str | Sequence[str] = "auto",
        extra_patient_columns: Sequence[str] = (),
        mask_fill_values: bool = True,
        treatments_before_landmark: str = "inclusive",
        landmark_time: bool = False,
    ) -> None:
        self.landmark_h = landmark_h
        self.analytes = analytes
        self.extra_patient_columns = extra_patient_columns
        self.mask_fill_values = mask_fill_values
        self.treatments_before_landmark = treatments_before_landmark
        self.landmark_time = landmark_time

    def fit(self, cohort: Cohort, y: object = None) -> LandmarkFeatures:
        """Fix the analyte set and the suspected fill values from the training cohort."""
        self._validate_params()
        m = cohort.measurements
        if isinstance(self.analytes, str) and self.analytes == "auto":
            present = set(m["analyte"].dropna().unique())
            self.analytes_ = [a for a in CANONICAL_UNITS if a in present]
        else:
            unknown = [a for a in self.analytes if a not in CANONICAL_UNITS]
            if unknown:
                raise ValueError(f"unknown analytes: {unknown}")
            self.analytes_ = list(self.analytes)
        if self.mask_fill_values:
            fills = fill_value_table(m)
            self.fill_values_ = {a: sorted(g["value"].astype(float)) for a, g in fills.groupby("analyte")}
        else:
            self.fill_values_ = {}
        self.extra_categories_ = extra_categories(cohort.patients, tuple(self.extra_patient_columns))
        extra = [
            name
            for c in self.extra_patient_columns
            for name in (
                [category_feature(c, v) for v in self.extra_categories_[c]]
                if c in self.extra_categories_
                else [f"extra_{c}"]
            )
        ]
        self.feature_names_out_ = np.array(
            [f"{a}_{s}" for a in self.analytes_ for s in KINETIC_STATS]
            + list(COURSE_FEATURES)
            + list(CLINICAL_FEATURES)
            + extra
            + list(SCORE_FEATURES)
            + ([LANDMARK_TIME_FEATURE] if self.landmark_time else []),
            dtype=object,
        )
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return self.feature_names_out_

    def _mask(self, m: pd.DataFrame) -> pd.DataFrame:
        if not self.fill_values_:
            return m
        fills = pd.DataFrame(
            [(a, v) for a, vals in self.fill_values_.items() for v in vals], columns=["analyte", "value"]
        )
        hit = m[["analyte", "value"]].merge(fills.assign(_fill=True), on=["analyte", "value"], how="left")
        is_fill = hit["_fill"].fillna(False).to_numpy(dtype=bool) & m["qualifier"].isna().to_numpy(dtype=bool)
        return m[~is_fill]

    def build(self, cohort: Cohort) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Features for every patient and landmark, and the eligibility table beside them."""
        if not hasattr(self, "analytes_"):
            raise RuntimeError("LandmarkFeatures is not fitted: call fit(cohort) first")
        pids = pd.Index(cohort.patients["patient_id"].to_numpy())
        n = len(pids)
        horizon = max(landmarks(self.landmark_h))

        def upto(df: pd.DataFrame) -> pd.DataFrame:
            return df[df["time_h"].to_numpy(dtype=float) <= horizon]

        m = self._mask(upto(cohort.measurements))
        v, c, tx = upto(cohort.vitals), upto(cohort.crs_grades()), upto(cohort.treatments)
        m_codes, v_codes, c_codes, t_codes = (index_in(x["patient_id"], pids) for x in (m, v, c, tx))
        m_t, v_t, c_t, t_t = (x["time_h"].to_numpy(dtype=float) for x in (m, v, c, tx))
        clinical = clinical_features(cohort.patients, tuple(self.extra_patient_columns), self.extra_categories_)
        kin_analytes = list(dict.fromkeys([*self.analytes_, *SCORE_ANALYTES]))
        frames = []
        for L in landmarks(self.landmark_h):
            sel = m_t <= L
            kin = kinetic_features(m[sel], m_codes[sel], n, kin_analytes, L)
            vsel, csel = v_t <= L, c_t <= L
            tsel = t_t < L if self.treatments_before_landmark == "strict" else t_t <= L
            course = course_features(v[vsel], v_codes[vsel], c[csel], c_codes[csel], tx[tsel], t_codes[tsel], n, L)
            hay_h = min(L, HAY_WINDOW_H)
            hv = v_t <= hay_h
            hay_temp = per_patient(v_codes[hv], v["temp_c"].to_numpy(dtype=float)[hv], n, "max")
            hm = (m_t <= hay_h) & (m["analyte"] == "mcp1").fillna(False).to_numpy(dtype=bool)
            hay_mcp1 = per_patient(m_codes[hm], m["value"].to_numpy(dtype=float)[hm], n, "max")
            scores = score_features(kin, hay_temp, hay_mcp1)
            frame = pd.concat([kin, course, clinical, scores], axis=1)
            if self.landmark_time:
                frame[LANDMARK_TIME_FEATURE] = L
            frame.index = pd.MultiIndex.from_arrays([pids, np.full(n, L)], names=INDEX)
            frames.append(frame[list(self.feature_names_out_)])
        X = pd.concat(frames)
        return X, eligibility(cohort, self.landmark_h, crs=c)

    def transform(self, cohort: Cohort) -> pd.DataFrame:
        """One row per eligible patient and landmark, indexed by (patient_id, landmark_h)."""
        X, elig = self.build(cohort)
        keep = elig.set_index(INDEX)["eligible"].reindex(X.index).to_numpy(dtype=bool)
        return X[keep]


def features_to_dict(fb: LandmarkFeatures) -> dict:
    """Parameters and fitted state of a :class:`LandmarkFeatures` as JSON-able data."""
    params = fb.get_params()
    params["extra_patient_columns"] = list(params["extra_patient_columns"])
    if not isinstance(params["analytes"], str):
        params["analytes"] = list(params["analytes"])
    if np.ndim(params["landmark_h"]):
        params["landmark_h"] = [float(x) for x in params["landmark_h"]]
    return {
        "params": params,
        "analytes_": list(fb.analytes_),
        "fill_values_": {a: [float(v) for v in vals] for a, vals in fb.fill_values_.items()},
        "extra_categories_": {c: list(v) for c, v in fb.extra_categories_.items()},
        "feature_names_out_": [str(x) for x in fb.feature_names_out_],
    }


def features_from_dict(d: dict) -> LandmarkFeatures:
    """Inverse of :func:`features_to_dict`: a fitted builder, without refitting."""
    fb = LandmarkFeatures(**d["params"])
    fb.analytes_ = list(d["analytes_"])
    fb.fill_values_ = {a: list(v) for a, v in d["fill_values_"].items()}
    fb.extra_categories_ = {c: list(v) for c, v in d.get("extra_categories_", {}).items()}  # absent before text columns
    fb.feature_names_out_ = np.array(d["feature_names_out_"], dtype=object)
    return fb
