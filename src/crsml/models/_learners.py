"""Candidate estimators of the benefit of tocilizumab now, ``tau(x) = E[Y(0) - Y(1) | x]``.

- ``dr_learner``, ``x_learner``, ``causal_forest``: EconML's DRLearner, XLearner and
  CausalForestDML with tuned XGBoost nuisances (the forest's own intervals are valid, honest
  ones: Athey, Tibshirani and Wager 2019).
- ``risk_scaled``: the risk-based approach of the PATH statement (Kent et al., Ann Intern Med
  2020): the predicted risk of the outcome tocilizumab is given to prevent (progression to
  grade >= 3 after the landmark, without tocilizumab now) times one factor, the doubly robust
  (AIPW) average benefit in days per unit of risk. As PATH recommends, the risk model is fitted
  on the whole population (every eligible patient not treated now, inside the overlap or not),
  the effect inside the overlap. It ranks patients exactly by their risk, so it is the yardstick a free-form
  learner has to beat; in CRS most of the benefit sits with patients who would otherwise
  become severe, and a learner fed few treated patients can rank worse than risk itself.
- ``risk_strata``: PATH's other form, the AIPW effect (days) within quarters of that predicted risk.

Every candidate takes ``X`` without missing values (median-imputed by scikit-learn's ``SimpleImputer``), a
0/1 treatment and the outcome, and returns the benefit (positive: tocilizumab helps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer

from crsml.models._causal import DEFAULT_TRIM, aipw, crossfit
from crsml.models._nuisance import classifier, regressor

CANDIDATES = ("dr_learner", "x_learner", "causal_forest", "risk_scaled", "risk_strata")


def risk_benefit(
    name: str, risk: np.ndarray, scale: float = 0.0, edges: np.ndarray | None = None, effects: np.ndarray | None = None
) -> np.ndarray:
    """A risk-based candidate's benefit from its predicted risk: ``scale * risk`` (``risk_scaled``)
    or the effect of the risk stratum (``risk_strata``; ``edges`` split the strata)."""
    if name == "risk_scaled":
        return scale * risk
    return effects[np.searchsorted(edges, risk, side="right")]


class Candidate:
    """One benefit estimator; ``params`` holds the tuned nuisance settings."""

    def __init__(self, name: str, params: dict[str, dict[str, Any]], seed: int = 0, trim: float = DEFAULT_TRIM):
        if name not in CANDIDATES:
            raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")
        self.name = name
        self.params = params
        self.seed = seed
        self.trim = trim

    def fit(self, X: np.ndarray, T: np.ndarray, Y: np.ndarray, inside: np.ndarray | None = None) -> Candidate:
        """Fit on the rows ``inside`` the overlap (all rows when not given); the risk-based
        candidates also fit their risk model on the untreated rows outside it."""
        inside = np.ones(len(T), dtype=bool) if inside is None else np.asarray(inside, dtype=bool)
        # EconML's learners reject missing values; all-missing columns are imputed as 0
        self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True).fit(X[inside])
        X_all = self.imputer_.transform(X)
        untreated_all = T == 0
        Y_all = Y
        Xi, T, Y = X_all[inside], T[inside], Y[inside]
        pp, rp, fp = self.params["propensity"], self.params["outcome"], self.params["final"]
        if self.name == "dr_learner":
            from econml.dr import DRLearner

            self.est_ = DRLearner(
                model_propensity=classifier(pp),
                model_regression=regressor(rp),
                model_final=regressor(fp),
                min_propensity=self.trim,
                cv=2,
                random_state=self.seed,
            ).fit(Y, T, X=Xi)
        elif self.name == "x_learner":
            from econml.metalearners import XLearner

            self.est_ = XLearner(models=regressor(rp), cate_models=regressor(fp), propensity_model=classifier(pp)).fit(
                Y, T, X=Xi
            )
        elif self.name == "causal_forest":
            from econml.dml import CausalForestDML

            self.est_ = CausalForestDML(
                model_y=regressor(rp),
                model_t=classifier(pp),
                discrete_treatment=True,
                n_estimators=200,
                min_samples_leaf=10,
                cv=2,
                random_state=self.seed,
            ).fit(Y, T, X=Xi)
            # Trees are grown in parallel (each from its own seed, so the same bytes), but the
            # forest sums its trees' predictions from threads in whatever order they finish:
            # predict on one thread so the same seed gives the same bytes.
            for forest in self.est_.model_final_.estimators_:
                forest.set_params(n_jobs=1)
        else:
            # PATH: the risk is of the outcome tocilizumab is given to prevent (any severe-CRS day
            # after L, i.e. progression to grade >= 3), from a model of everyone not treated now
            severe = (Y_all[untreated_all] > 0).astype(int)
            self.base_rate_ = float(severe.mean()) if len(severe) else 0.0
            self.risk_model_ = (
                classifier(rp).fit(X_all[untreated_all], severe) if 0 < severe.sum() < len(severe) else None
            )
            nu = crossfit(Xi, T, Y, pp, rp, folds=2, seed=self.seed)
            e = np.clip(nu.e, self.trim, 1 - self.trim)
            y1 = nu.mu1 + T * (Y - nu.mu1) / e
            y0 = nu.mu0 + (1 - T) * (Y - nu.mu0) / (1 - e)
            risk = self.risk(Xi)
            self.effect_interval_ = aipw(y0 - y1)  # the average benefit (days) and its 95% interval
            if self.name == "risk_scaled":
                # days spared per unit of risk, so the mean benefit inside the overlap is the AIPW one;
                # never negative: tocilizumab lowers severe CRS in every trial (Kent et al.'s PATH
                # risk model assumes the direction), so a negative estimate means the records cannot
                # show the benefit, not that it ranks against risk
                self.raw_scale_ = float((y0 - y1).mean() / risk.mean()) if risk.mean() > 0 else 0.0
                self.scale_ = max(self.raw_scale_, 0.0)
            else:
                self.edges_ = np.unique(np.quantile(risk, [0.25, 0.5, 0.75]))
                q = np.searchsorted(self.edges_, risk, side="right")
                self.effects_ = np.array(
                    [(y0 - y1)[q == k].mean() if (q == k).any() else 0.0 for k in range(len(self.edges_) + 1)]
                )
        return self

    def risk(self, Xi: np.ndarray) -> np.ndarray:
        """Risk-based candidates: probability of grade >= 3 after L without tocilizumab now (imputed ``X``)."""
        if self.risk_model_ is None:
            return np.full(len(Xi), self.base_rate_)
        return self.risk_model_.predict_proba(Xi)[:, 1]

    def benefit(self, X: np.ndarray) -> np.ndarray:
        Xi = self.imputer_.transform(X)
        if self.name in ("dr_learner", "x_learner", "causal_forest"):
            return -np.asarray(self.est_.effect(Xi), dtype=float).ravel()
        if self.name == "risk_scaled":
            return risk_benefit(self.name, self.risk(Xi), scale=self.scale_)
        return risk_benefit(self.name, self.risk(Xi), edges=self.edges_, effects=self.effects_)

    def interval(self, X: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray] | None:
        """The forest's own interval for the benefit (None for the other candidates)."""
        if self.name != "causal_forest":
            return None
        lo, hi = self.est_.effect_interval(self.imputer_.transform(X), alpha=alpha)
        return -np.asarray(hi, dtype=float).ravel(), -np.asarray(lo, dtype=float).ravel()
