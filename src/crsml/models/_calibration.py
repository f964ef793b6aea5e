"""Probability calibration chosen by cross-validation, stored as plain JSON (never pickled).

Candidates: ``none``, ``sigmoid`` (Platt scaling on the logit) and ``isotonic``. The choice is
the one with the lowest cross-validated log loss on out-of-fold training predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from crsml.models._folds import stratified_folds

METHODS = ("none", "sigmoid", "isotonic")
#: a landmark supermodel's extra candidate: Platt scaling whose intercept and slope move linearly
#: with the landmark (logit p' = a + b logit p + c l + d l logit p, l the landmark in days from
#: 48 h), for a model whose calibration does not hold at every landmark alike (issue #35)
LANDMARK_METHOD = "sigmoid_landmark"
_EPS = 1e-6


def _landmark_design(p: np.ndarray, landmark: np.ndarray) -> np.ndarray:
    lp = log_odds(p)
    ell = (np.asarray(landmark, dtype=float) - 48.0) / 24.0
    return np.column_stack([lp, ell, lp * ell])


def log_odds(p: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """Log odds of probabilities clipped to ``[eps, 1 - eps]`` (finite at 0 and 1)."""
    return logit(np.clip(np.asarray(p, dtype=float), eps, 1 - eps))


class Calibrator:
    """Maps raw model probabilities to calibrated ones; ``to_dict``/``from_dict`` for JSON."""

    def __init__(self, method: str = "none") -> None:
        if method not in (*METHODS, LANDMARK_METHOD):
            raise ValueError(f"unknown calibration {method!r}; expected one of {(*METHODS, LANDMARK_METHOD)}")
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray, landmark: np.ndarray | None = None) -> Calibrator:
        """Fit on raw probabilities ``p`` and outcomes ``y`` (``landmark``: each row's landmark,
        hours, for ``sigmoid_landmark``)."""
        p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=int)
        if self.method == LANDMARK_METHOD:
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(_landmark_design(p, self._need(landmark)), y)
            self.coefs_, self.intercept_ = [float(c) for c in lr.coef_[0]], float(lr.intercept_[0])
        elif self.method == "sigmoid":
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds(p)[:, None], y)
            self.coef_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        elif self.method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            self.x_, self.y_ = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        return self

    def _need(self, landmark: np.ndarray | None) -> np.ndarray:
        if landmark is None:
            raise ValueError(f"calibration {self.method} needs each row's landmark")
        return np.asarray(landmark, dtype=float)

    def predict(self, p: np.ndarray, landmark: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities of raw ``p`` (``landmark`` for ``sigmoid_landmark``)."""
        p = np.asarray(p, dtype=float)
        if self.method == LANDMARK_METHOD:
            p = expit(_landmark_design(p, self._need(landmark)) @ np.asarray(self.coefs_) + self.intercept_)
        elif self.method == "sigmoid":
            p = expit(self.coef_ * log_odds(p) + self.intercept_)
        elif self.method == "isotonic":
            p = np.clip(np.interp(p, self.x_, self.y_), _EPS, 1 - _EPS)
        update = getattr(self, "update_", None)
        if update:  # a model updated at a new centre: logit p' = a + b logit p (crsml update)
            p = expit(update["intercept"] + update["slope"] * log_odds(p))
        return p

    def with_update(self, intercept: float, slope: float) -> Calibrator:
        """A copy whose risks are recalibrated: ``logit p' = intercept + slope * logit p``, composed
        with any update it already has."""
        c = Calibrator.from_dict(self.to_dict())
        old = getattr(self, "update_", None) or {"intercept": 0.0, "slope": 1.0}
        c.update_ = {"intercept": float(intercept + slope * old["intercept"]), "slope": float(slope * old["slope"])}
        return c

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method}
        if self.method == "sigmoid":
            d |= {"coef": self.coef_, "intercept": self.intercept_}
        elif self.method == LANDMARK_METHOD:
            d |= {"coefs": self.coefs_, "intercept": self.intercept_}
        elif self.method == "isotonic":
            d |= {"x": self.x_, "y": self.y_}
        if getattr(self, "update_", None):
            d["update"] = dict(self.update_)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        c = cls(d["method"])
        if c.method == "sigmoid":
            c.coef_, c.intercept_ = float(d["coef"]), float(d["intercept"])
        elif c.method == LANDMARK_METHOD:
            c.coefs_, c.intercept_ = [float(x) for x in d["coefs"]], float(d["intercept"])
        elif c.method == "isotonic":
            c.x_, c.y_ = list(d["x"]), list(d["y"])
        if d.get("update"):
            c.update_ = {"intercept": float(d["update"]["intercept"]), "slope": float(d["update"]["slope"])}
        return c


def choose_calibration(
    p: np.ndarray,
    y: np.ndarray,
    seed: int,
    folds: int = 5,
    groups: np.ndarray | None = None,
    landmark: np.ndarray | None = None,
) -> tuple[Calibrator, dict[str, float]]:
    """Pick the method with the lowest cross-validated log loss (folds by ``groups``, a
    patient's landmarks together, when given); return it fitted on all of ``p``. With each
    row's ``landmark`` (a landmark supermodel) ``sigmoid_landmark`` is a candidate too."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=int)
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    methods = (*METHODS, LANDMARK_METHOD) if landmark is not None else METHODS
    ell = None if landmark is None else np.asarray(landmark, dtype=float)
    losses: dict[str, float] = {}
    for method in methods:
        if k < 2:
            losses[method] = log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1]) if method == "none" else np.inf
            continue
        out = np.empty_like(p)
        for tr, te in stratified_folds(k, y, seed, groups):
            at_tr, at_te = (None, None) if ell is None else (ell[tr], ell[te])
            out[te] = Calibrator(method).fit(p[tr], y[tr], at_tr).predict(p[te], at_te)
        losses[method] = float(log_loss(y, np.clip(out, _EPS, 1 - _EPS), labels=[0, 1]))
    best = min(methods, key=lambda m: (losses[m], methods.index(m)))
    return Calibrator(best).fit(p, y, ell), losses
