"""The benefit model: candidates compared by a criterion that needs no truth, the chosen one
refitted, and the result exported as XGBoost boosters only.

``fit`` (one row per eligible patient, treatment never among the features):

1. tunes the nuisance models with Optuna (propensity: classifier; outcome: regressor);
2. cross-fits propensity and outcome means (for the DR pseudo-outcomes and the propensity's
   AUROC) and trims patients whose propensity, from the booster exported to score new patients,
   lies outside ``[trim, 1 - trim]`` (reported, never silent; the same rule at scoring); the
   AIPW average benefit is taken over the patients inside that overlap whose cross-fitted
   propensity also lies inside Crump et al.'s data-driven bound (:func:`crump_bound`),
   cross-fitted on ``ate_splits`` random splits and aggregated by the median (Chernozhukov et
   al. 2018), so its interval carries the spread between splits;
3. scores every candidate by its held-out doubly robust loss, mean of ``(phi - tau(x))^2``
   over patient folds (``phi``: the DR pseudo-outcome; Kennedy 2023), and keeps the lowest
   unless it beats the risk-based candidate of PATH (always in the running) by less than one
   standard error (:func:`choose`);
4. refits the chosen candidate on all patients inside the overlap (a risk-based candidate's
   risk model on every eligible patient not treated now, as PATH recommends) and exports it:
   a risk-based candidate as it is (its risk booster, imputation medians and scale factor or
   strata; :class:`RiskEffect`), any other distilled into one XGBoost regressor. That is the
   ``benefit`` column; its SHAP values (TreeSHAP of the booster, in days) explain it;
5. fits a causal forest on the same patients (the chosen one when the forest was chosen) and
   distils the ends of its 95% interval into two more regressors; ``benefit_low`` and
   ``benefit_high`` are that interval, stretched where needed to hold ``benefit`` when another
   estimator was chosen. The forest's intervals are the honest ones of Athey, Tibshirani and
   Wager (2019): an interval for the average benefit of patients with these features. A
   bootstrap of the chosen estimator cannot stand in for them: refitting ``risk_scaled`` only
   moves its one scale factor, so its spread says nothing about the effect modification
   it leaves out (it covered the simulator's feature-level benefit for 38% of patients at 48 h);
6. fits the risk of progression to grade >= 3 without tocilizumab now (calibrated
   :class:`XGBRiskClassifier` on the untreated).

Saved as XGBoost JSON boosters plus a JSON settings file; nothing is pickled.
"""

from __future__ import annotations

import json
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval

from crsml.errors import CrsmlError
from crsml.features import category_of
from crsml.models._causal import (
    DEFAULT_SPLITS,
    DEFAULT_TRIM,
    aipw,
    average_effect,
    balance_table,
    crossfit,
    crossfit_splits,
    overlap,
    trim_reason,
)
from crsml.models._heterogeneity import BenefitValidation, rate, rate_difference, validate_benefit
from crsml.models._learners import CANDIDATES, Candidate, risk_benefit
from crsml.models._nuisance import tune_xgb
from crsml.models._risk import XGBRiskClassifier
from crsml.models._xgb import MAX_BIN, native_params

SETTINGS_FILE = "benefit.json"
LONG_COURSE_QUANTILE = 0.9
"""The days severe of a long course, as a quantile of the days of the untreated who became severe:
the most one dose could spare a patient, per unit of risk (the upper end of a risk-based interval)."""
INTERVAL_ENDS = ("low", "high")
BASES = ("compared", "extrapolated", "prior")
# The literature's effect, used where the records cannot show the average benefit: pre-emptive
# tocilizumab for high-burden paediatric B-ALL (Kadauke et al., J Clin Oncol 2021; NCT02906371):
# grade 4 CRS in 4 of 15 patients against 13 of 26 with standard management, risk ratio 0.53
# (95% CI 0.21 to 1.34). The only comparative estimate of preventing severe CRS with tocilizumab
# we have found; applied to the risk of severe CRS, and to the days such a patient spends severe
# in the records, it is an assumption that the relative effect carries over (PATH, Kent et al. 2020).
PRIOR_RISK_RATIO = {"estimate": 0.53, "low": 0.21, "high": 1.34, "source": "Kadauke et al., J Clin Oncol 2021"}
CLAN_FEATURES = 5  # the benefit's most used features whose top and bottom groups are compared


class BenefitModel(BaseEstimator):
    """Benefit of tocilizumab now (severe-CRS days spared) with the causal forest's 95% interval.

    Parameters
    ----------
    candidates : candidate names (``crsml.models._learners.CANDIDATES``); ``risk_scaled`` is
        always added.
    trials : Optuna trials per nuisance model.
    folds : patient folds for cross-fitting and for the selection criterion.
    trim : overlap bound on the estimated propensity.
    seed : seeds folds, Optuna, XGBoost and EconML.
    ate_splits : random cross-fitting splits behind the average benefit (median of their estimates).
    nuisance_params : XGBoost settings for ``propensity``, ``outcome`` and ``final`` models
        (scikit-learn names); tuned with Optuna when not given.

    Attributes
    ----------
    n_features_in_, feature_names_in_ : the features it was fitted on.
    nuisance_params_ : the (tuned) XGBoost settings of the propensity, outcome and final models.
    propensity_ : the exported propensity booster (trims patients at fitting and at scoring alike).
    propensity_auroc_ : cross-fitted AUROC of the propensity.
    cross_fitted_propensity_ : each training patient's cross-fitted propensity (in memory only).
    overlap_ : which training patients lie inside ``[trim, 1 - trim]``; ``n_trimmed_`` and
        ``trim_counts_`` count them.
    ate_, ate_severe_, ate_all_ : AIPW average benefit in days (and on any grade >= 3), with 95% CI.
    balance_ : standardised mean differences before and after weighting.
    selection_ : every candidate's held-out DR loss and its comparison with ``risk_scaled``.
    chosen_ : the candidate that gives ``benefit``.
    risk_effect_ : the exact export of a risk-based choice (None when distilled).
    effect_ : the booster behind ``benefit``; ``interval_`` the two behind its interval.
    risk_ : :class:`XGBRiskClassifier` of grade >= 3 without tocilizumab now.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "candidates": [tuple, list],
        "trials": [Interval(Integral, 1, None, closed="left")],
        "folds": [Interval(Integral, 2, None, closed="left")],
        "trim": [Interval(Real, 0, 0.5, closed="neither")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "progress": ["boolean"],
        "nuisance_params": [dict, None],
        "ate_splits": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        candidates: tuple[str, ...] = CANDIDATES,
        trials: int = 10,
        folds: int = 3,
        trim: float = DEFAULT_TRIM,
        seed: int = 0,
        n_threads: int | None = None,
        progress: bool = False,
        nuisance_params: dict[str, dict[str, Any]] | None = None,
        ate_splits: int = DEFAULT_SPLITS,
    ):
        self.candidates = candidates
        self.trials = trials
        self.folds = folds
        self.trim = trim
        self.seed = seed
        self.n_threads = n_threads
        self.progress = progress
        self.nuisance_params = nuisance_params
        self.ate_splits = ate_splits

    def fit(self, X: pd.DataFrame, treated: np.ndarray, days: np.ndarray, severe: np.ndarray) -> BenefitModel:
        self._validate_params()
        Xa = np.asarray(X, dtype=np.float32)
        T = np.asarray(treated, dtype=int)
        Y = np.asarray(days, dtype=float)
        Yb = np.asarray(severe, dtype=int)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = Xa.shape[1]
        if T.sum() < 2 * self.folds and (1 - T).sum() >= 2 * self.folds and 0 < Yb[T == 0].sum() < (T == 0).sum():
            return self._fit_prior_only(X, T, Y, Yb)
        if T.sum() < 2 * self.folds or (1 - T).sum() < 2 * self.folds:
            raise ValueError(
                f"too few patients in one arm to estimate a benefit: {int(T.sum())} treated now, "
                f"{int((1 - T).sum())} not (need {2 * self.folds} of each)"
            )
        names = tuple(dict.fromkeys((*self.candidates, "risk_scaled")))
        steps = 6 + len(names)
        from crsml._progress import StageProgress

        bar = StageProgress("benefit model (nuisances, candidates, interval)", steps, self.progress).__enter__()
        tick = bar.advance
        try:
            if self.nuisance_params is not None:  # settings tuned before, e.g. on another cohort
                params = dict(self.nuisance_params)
            else:
                params = {
                    "propensity": tune_xgb(Xa, T, "classifier", self.trials, seed=self.seed, n_threads=self.n_threads)
                }
                tick()
                params["outcome"] = tune_xgb(Xa, Y, "regressor", self.trials, seed=self.seed, n_threads=self.n_threads)
                params["final"] = params["outcome"]
            self.nuisance_params_ = params
            tick()
            nu = crossfit(Xa, T, Y, params["propensity"], params["outcome"], self.folds, self.seed)
            self.propensity_auroc_ = float(roc_auc_score(T, nu.e))
            # one trimming rule for training and scoring: the exported propensity booster
            self.propensity_ = xgb.train(
                _native(params["propensity"], "binary:logistic"),
                xgb.QuantileDMatrix(Xa, label=T, max_bin=MAX_BIN),
                params["propensity"]["n_estimators"],
            )
            e_fit = self.propensity_.inplace_predict(Xa)
            inside = overlap(e_fit, self.trim)
            self.n_trimmed_ = int((~inside).sum())
            self.trim_counts_ = {
                "inside": int(inside.sum()),
                "below": int((e_fit < self.trim).sum()),
                "above": int((e_fit > 1 - self.trim).sum()),
                "treated_inside": int(T[inside].sum()),
            }
            if T[inside].sum() < self.folds or (1 - T[inside]).sum() < self.folds:
                return self._fit_prior_only(
                    X,
                    T,
                    Y,
                    Yb,
                    f"only {int(T[inside].sum())} of the {int(T.sum())} patients given tocilizumab now lie "
                    "inside the propensity overlap",
                )
            self.cross_fitted_propensity_ = nu.e
            self.overlap_ = inside
            phi = nu.pseudo_outcome(T, Y, self.trim)[inside]
            splits = crossfit_splits(
                Xa, T, Y, params["propensity"], params["outcome"], self.folds, self.seed, self.ate_splits, first=nu
            )
            self.ate_, region = average_effect(splits, T, Y, self.trim, within=inside)
            self.ate_all_ = aipw(nu.pseudo_outcome(T, Y, self.trim))
            severe = crossfit_splits(
                Xa,
                T,
                Yb.astype(float),
                params["propensity"],
                params["outcome"],
                self.folds,
                self.seed,
                self.ate_splits,
                e=[n.e for n in splits],
            )
            self.ate_severe_, _ = average_effect(severe, T, Yb.astype(float), self.trim, region=region)
            self.balance_ = balance_table(X.iloc[np.flatnonzero(inside)], T[inside], nu.e[inside], self.trim)
            tick()
            Xi = Xa[inside]
            # RATE and the validation judge on the patients inside Crump's bound, where the doubly
            # robust scores do not divide by propensities near 0 or 1
            self.validation_region_ = region[inside]
            self.selection_ = self._select(names, params, Xa, T, Y, inside, phi, tick)
            self.chosen_ = choose(self.selection_)
            chosen = Candidate(self.chosen_, params, self.seed, self.trim).fit(Xa, T, Y, inside)
            tick()
            self.train_benefit_ = chosen.benefit(Xa)
            self.risk_effect_ = RiskEffect.from_candidate(chosen)
            self.effect_ = self.risk_effect_.booster if self.risk_effect_ else self._distil(Xi, chosen.benefit(Xi))
            forest = (
                chosen
                if self.chosen_ == "causal_forest"
                else Candidate("causal_forest", params, self.seed, self.trim).fit(Xa, T, Y, inside)
            )
            low, high = forest.interval(Xi)
            self.interval_ = (self._distil(Xi, low), self._distil(Xi, high))
            tick()
            self.risk_ = XGBRiskClassifier(n_trials=self.trials, seed=self.seed, n_threads=self.n_threads).fit(
                X.iloc[np.flatnonzero(T == 0)], Yb[T == 0]
            )
            self.effect_scale_ = self._effect_scale(X, T, Y, region)
            self.direction_notes_ = (
                [prior_note(self.ate_)]
                if self.effect_scale_["basis"] == "prior"
                else direction_notes(chosen, self.selection_)
            )
            c = self.validation_region_
            self.validation_ = validate_benefit(
                phi[c],
                {"benefit": self.oof_benefit_[self.chosen_][c], "risk": self.oof_benefit_["risk_scaled"][c]},
                X.iloc[np.flatnonzero(region)][self._clan_features()],
                where="cross-fitted in the development cohort",
                seed=self.seed,
            )
            tick()
        finally:
            bar.__exit__()
        return self

    def _select(self, names, params, X, T, Y, inside, phi, tick) -> pd.DataFrame:
        """Held-out DR loss (and the DR value of treating the top 30%) of every candidate, on the
        patients inside the overlap (``phi``: their pseudo-outcomes); folds split every eligible
        patient, so a risk-based candidate's risk model never sees a held-out patient either."""
        k = int(min(self.folds, T[inside].sum(), (1 - T[inside]).sum()))
        oof = {n: np.empty(len(T)) for n in names}
        # the patients outside the overlap are a stratum of their own when there are enough of them
        strata = np.where(inside | ((~inside).sum() < k), T, 2)
        for tr, va in StratifiedKFold(k, shuffle=True, random_state=self.seed + 1).split(X, strata):
            for n in names:
                fitted = Candidate(n, params, self.seed, self.trim).fit(X[tr], T[tr], Y[tr], inside[tr])
                oof[n][va] = fitted.benefit(X[va])
        oof = {n: v[inside] for n, v in oof.items()}
        self.oof_benefit_ = oof  # in memory only: the priorities the validation judges
        rows = {}
        base = (phi - oof["risk_scaled"]) ** 2
        for n in names:
            err = (phi - oof[n]) ** 2
            diff = err - base
            top = oof[n] >= np.quantile(oof[n], 0.7)
            rows[n] = {
                "dr_loss": float(err.mean()),
                "dr_loss_se": float(err.std(ddof=1) / np.sqrt(len(err))),
                "vs_risk_scaled": float(diff.mean()),
                "vs_risk_scaled_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                "dr_value_top30": float(phi[top].sum() / len(phi)),
                "rank_corr_with_risk_scaled": float(
                    pd.Series(oof[n]).corr(pd.Series(oof["risk_scaled"]), method="spearman")
                ),
            }
            c = self.validation_region_
            r = rate(phi[c], oof[n][c], seed=self.seed, n_boot=200, grid=np.array([1.0]))
            d = rate_difference(phi[c], oof[n][c], oof["risk_scaled"][c], seed=self.seed, n_boot=200)
            rows[n] |= {
                "autoc": r["autoc"],
                "autoc_se": r["autoc_se"],
                "autoc_vs_risk": d["diff"],
                "autoc_vs_risk_low": d["low"],
            }
            tick()
        return pd.DataFrame(rows).T

    def _fit_prior_only(
        self, X: pd.DataFrame, T: np.ndarray, Y: np.ndarray, Yb: np.ndarray, why: str = ""
    ) -> BenefitModel:
        """Too few patients given tocilizumab now to compare anyone (the founding study's practice:
        none of 45 at 24, 48 or 72 h): every benefit is ``prior``, the risk of progression without a
        dose now (fitted on the untreated) times the literature's effect. Nothing is compared, so
        there is no propensity, no candidate and no validation."""
        n, treated = len(T), int(T.sum())
        self.prior_only_ = True
        self.nuisance_params_ = {}
        self.propensity_ = None
        self.propensity_auroc_ = float("nan")
        self.cross_fitted_propensity_ = np.full(n, np.nan)
        self.overlap_ = np.zeros(n, dtype=bool)
        self.n_trimmed_ = 0
        self.trim_counts_ = {"inside": 0, "below": 0, "above": 0, "treated_inside": 0}
        self.ate_ = aipw(np.zeros(0)) | {"bound": self.trim, "splits": 0, "split_sd": float("nan")}
        self.ate_all_ = self.ate_severe_ = dict(self.ate_)
        self.balance_ = pd.DataFrame({"smd_before": [], "smd_weighted": []})
        self.selection_ = pd.DataFrame()
        self.chosen_ = "prior"
        self.risk_effect_ = None
        self.effect_ = None
        self.interval_ = None
        self.validation_ = None
        self.risk_ = XGBRiskClassifier(n_trials=self.trials, seed=self.seed, n_threads=self.n_threads).fit(
            X.iloc[np.flatnonzero(T == 0)], Yb[T == 0]
        )
        self.effect_scale_ = self._effect_scale(X, T, Y, np.ones(n, dtype=bool))
        why = why or (
            f"only {treated} of {n} eligible patients were given tocilizumab now (at least {2 * self.folds} are "
            "needed to compare anyone)"
        )
        self.direction_notes_ = [
            f"{why}: these records cannot show any benefit, so every benefit is the risk times "
            "the literature's effect (benefit_basis prior); it ranks patients by risk, and its size is the "
            "literature's, not these records'"
        ]
        return self

    def _effect_scale(self, X: pd.DataFrame, T: np.ndarray, Y: np.ndarray, region: np.ndarray) -> dict[str, Any]:
        """Severe-CRS days spared per unit of risk, for patients the records cannot compare (PATH):
        the AIPW average benefit over the patients inside Crump's bound divided by their mean
        predicted risk (``basis`` ``compared``) or, where the records cannot tell the average from 0,
        the literature's risk ratio applied to the days a patient who becomes severe without a
        dose now spends severe in these records (``basis`` ``prior``)."""
        mean_risk = (
            float(self.risk_.predict_proba(X.iloc[np.flatnonzero(region)])[:, 1].mean()) if region.any() else 0.0
        )
        days = Y[(T == 0) & (Y > 0)]
        days_if_severe = float(days.mean()) if len(days) else float("nan")
        long_course = float(np.quantile(days, LONG_COURSE_QUANTILE)) if len(days) else float("nan")
        a = self.ate_
        out = {
            "mean_risk": mean_risk,
            "days_if_severe": days_if_severe,
            "days_long_course": long_course,
            "n_risk": int((T == 0).sum()),
        }
        if mean_risk > 0 and np.isfinite(a["low"]) and a["low"] > 0:
            return out | {
                "basis": "compared",
                "scale": a["ate"] / mean_risk,
                "low": a["low"] / mean_risk,
                "high": a["high"] / mean_risk,
            }
        rr = PRIOR_RISK_RATIO
        d = days_if_severe if np.isfinite(days_if_severe) else 0.0
        return out | {
            "basis": "prior",
            "scale": d * (1 - rr["estimate"]),
            "low": d * (1 - rr["high"]),
            "high": d * (1 - rr["low"]),
        }

    def _clan_features(self) -> list[str]:
        """The features the benefit leans on most (total gain in its booster), for CLAN."""
        gain = self.effect_.get_score(importance_type="total_gain")
        names = list(self.feature_names_in_)
        ranked = sorted(gain, key=lambda k: -gain[k])
        picked = [names[int(k[1:])] if k.startswith("f") and k[1:].isdigit() else k for k in ranked]
        return [c for c in picked if c in names][:CLAN_FEATURES]

    def _distil(self, X: np.ndarray, target: np.ndarray) -> xgb.Booster:
        p = self.nuisance_params_["final"]
        return xgb.train(
            _native(p, "reg:squarederror"), xgb.QuantileDMatrix(X, label=target, max_bin=MAX_BIN), p["n_estimators"]
        )

    # -- the estimator protocol of crsml models (shared with XGBRiskClassifier) ------------
    explains = ("benefit", "days spared", "{:.2f} days")
    DIRECTORY = "benefit"

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """The prediction columns: ``risk``, ``benefit``, ``benefit_low``, ``benefit_high``,
        ``benefit_basis``, ``propensity``."""
        return self.predict(X)[["risk", "benefit", "benefit_low", "benefit_high", "benefit_basis", "propensity"]]

    def score_rows(self, X: pd.DataFrame, contributions: bool) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray]:
        """Predictions for scoring (``reason`` non-empty where no benefit is given), the benefit's
        SHAP contributions for the rows given one when asked, and which rows those are."""
        pred = self.predict(X)
        given = pred["reason"].to_numpy() == ""
        contribs = self.contributions(X[given]) if contributions and given.any() else None
        return pred, contribs, given

    def explainable(self, X: pd.DataFrame) -> np.ndarray:
        """Rows given a benefit to explain (every row but those of a centre not seen in training)."""
        return self._basis(self._array(X)) != "" if len(X) else np.zeros(0, dtype=bool)

    def explained_value(self, X: pd.DataFrame) -> np.ndarray:
        """The benefit, in days, as its SHAP values add up to it."""
        contribs = self.contributions(X)
        return contribs[:, :-1].sum(axis=1) + contribs[:, -1]

    def _array(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if hasattr(X, "columns"):
            X = X[list(self.feature_names_in_)]
        return np.ascontiguousarray(X, dtype=np.float32)

    def predict(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """``benefit``, ``benefit_low``, ``benefit_high``, ``benefit_basis``, ``risk`` (of grade >= 3
        without tocilizumab now), ``propensity``, ``reason`` (non-empty only for a patient of a
        centre not seen in training, whose benefit columns are NaN) and ``benefit_note``.

        ``benefit_basis``: ``compared`` inside the propensity overlap (the chosen estimator, where
        treated and untreated patients like this one can be compared); ``extrapolated`` outside it
        (PATH: the risk without a dose now times the days spared per unit of risk learned inside);
        ``prior`` for everyone when the records cannot show the average benefit (the risk times the
        literature's effect, :data:`PRIOR_RISK_RATIO`). ``benefit_note`` says why."""
        Xa = self._array(X)
        e, reason = self._overlap(Xa)
        basis = self._basis(Xa, e, reason)
        b = self._effect(Xa)
        lo, hi = self.forest_interval(Xa) if len(Xa) and self.interval_ is not None else (b, b)
        # where the chosen estimator and the forest disagree, the interval is stretched to hold the
        # estimate, so a score never reads "benefit 0.9 (0.1 to 0.5)"
        lo, hi = np.minimum(lo, b), np.maximum(hi, b)
        risk = self.risk_.predict_proba(Xa)[:, 1] if len(Xa) else np.zeros(0)
        eb, elo, ehi = self._risk_based(risk)
        by_risk = (basis == "extrapolated") | (basis == "prior")
        compared = basis == "compared"
        if self._by_calibrated_risk() and np.isfinite(self.effect_scale_.get("days_long_course", np.nan)):
            # a risk-based benefit is one for every patient: inside the overlap its interval holds the
            # risk-based one too (the forest's alone covered 87% of the feature-level benefit there)
            lo, hi = np.minimum(lo, elo), np.maximum(hi, ehi)
        idx = X.index if hasattr(X, "index") else None
        note = "; ".join(getattr(self, "direction_notes_", []))
        notes = np.where(compared, note, "")
        notes = np.where(basis == "extrapolated", "extrapolated: " + reason.astype(object) + self._scale_note(), notes)
        notes = np.where(basis == "prior", self._scale_note().lstrip("; "), notes)
        return pd.DataFrame(
            {
                "benefit": np.where(compared, b, np.where(by_risk, eb, np.nan)),
                "benefit_low": np.where(compared, lo, np.where(by_risk, elo, np.nan)),
                "benefit_high": np.where(compared, hi, np.where(by_risk, ehi, np.nan)),
                "benefit_basis": basis,
                "risk": risk,
                "propensity": e,
                "reason": np.where(basis == "", reason, ""),
                "benefit_note": notes,
            },
            index=idx,
        )

    def _basis(self, Xa: np.ndarray, e: np.ndarray | None = None, reason: np.ndarray | None = None) -> np.ndarray:
        """Each row's ``benefit_basis`` ('' for a centre not seen in training, which keeps its reason)."""
        if e is None or reason is None:
            e, reason = self._overlap(Xa)
        scale = getattr(self, "effect_scale_", None)
        unseen = self._unseen(Xa)
        if scale is None:  # saved before every eligible patient was given a benefit
            return np.where(reason == "", "compared", "").astype(object)
        if scale["basis"] == "prior":
            return np.where(unseen, "", "prior").astype(object)
        return np.where(unseen, "", np.where(reason == "", "compared", "extrapolated")).astype(object)

    def _risk_based(self, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The risk-based benefit and its interval.

        The benefit is the risk times the days spared per unit of risk. That is an average over
        patients; one patient's days spared per unit of risk is not: where tocilizumab acts through
        what the risk does not see (the IL-6 share of the cytokine storm, the product), it ranged from
        0.1 to 3 days per unit of risk between patients of one risk decile on the simulator
        (experiments/benefit_interval_coverage.py), and the product of the two intervals covered 52-88%
        of the feature-level benefit. So the interval is one of what the records can bound, not of the
        average: from no benefit (or the harm the effect's interval allows) to the most a dose could
        spare, every severe day of a long course (the 90th percentile of the days severe of the
        untreated patients who became severe) times the risk's upper end (Wilson's interval with the
        untreated patients of one risk decile as its size: the support a calibrated probability rests
        on). A model saved before 2026-12-08 keeps the product of the two intervals."""
        s = getattr(self, "effect_scale_", None)
        if s is None or not len(risk):
            nan = np.full(len(risk), np.nan)
            return nan, nan, nan
        rlo, rhi = wilson(risk, max(s["n_risk"] / 10.0, 1.0))
        ends = np.stack([rlo * s["low"], rlo * s["high"], rhi * s["low"], rhi * s["high"]])
        lo, hi = ends.min(axis=0), ends.max(axis=0)
        if np.isfinite(s.get("days_long_course", np.nan)):
            lo, hi = np.minimum(lo, 0.0), np.maximum(hi, rhi * s["days_long_course"])
        return risk * s["scale"], lo, hi

    def _scale_note(self) -> str:
        s = getattr(self, "effect_scale_", None)
        if s is None:
            return ""
        if s["basis"] == "prior":
            rr = PRIOR_RISK_RATIO
            return (
                f"; prior: these records cannot show the average benefit, so it is the risk times the "
                f"literature's effect ({rr['source']}: risk ratio {rr['estimate']:g}, 95% CI {rr['low']:g} to "
                f"{rr['high']:g}) times {s['days_if_severe']:.1f} severe days (mean in these records of patients "
                "who became severe without a dose now); it ranks patients by risk"
            )
        return (
            f"; {s['scale']:.2f} days spared per unit of risk ({s['low']:.2f} to {s['high']:.2f}), learned "
            "where treated and untreated patients can be compared"
        )

    def effect(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The exported benefit of every row, inside the overlap or not (``predict`` blanks it outside)."""
        return self._effect(self._array(X))

    def _by_calibrated_risk(self) -> bool:
        """A risk-based choice ships the calibrated risk (the scores' ``risk``) times the days per unit
        of risk, so benefit and risk rank patients identically on both sides of the overlap's edge.
        Its own candidate booster (fitted with the outcome model's settings, uncalibrated) ranked
        worse than the risk it stands for: 0.794 against 0.850 of the oracle's gain at 30% on
        fever_practice at 48 h (1,000 training patients; experiments/benefit_interval_coverage.py)."""
        return self.risk_effect_ is not None and getattr(self, "effect_scale_", None) is not None

    def _effect(self, Xa: np.ndarray) -> np.ndarray:
        if self.effect_ is None:  # prior only
            return np.full(len(Xa), np.nan, dtype=np.float32)
        if self._by_calibrated_risk():
            risk = self.risk_.predict_proba(Xa)[:, 1] if len(Xa) else np.zeros(0)
            return (risk * self.effect_scale_["scale"]).astype(np.float32)
        if self.risk_effect_ is not None:
            return self.risk_effect_.predict(Xa)
        return self.effect_.inplace_predict(Xa)

    def inside_overlap(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """True inside the propensity overlap (where the benefit is ``compared``)."""
        return self._overlap(self._array(X))[1] == ""

    def _unseen(self, Xa: np.ndarray) -> np.ndarray:
        """Rows whose value of a text feature column (a centre) was not seen in training, or is blank."""
        unseen = np.zeros(len(Xa), dtype=bool)
        blocks: dict[str, list[int]] = {}
        for i, name in enumerate(self.feature_names_in_):
            if (category := category_of(str(name))) is not None:
                blocks.setdefault(category[0], []).append(i)
        for block in blocks.values():
            unseen |= np.isnan(Xa[:, block]).all(axis=1)
        return unseen

    def _overlap(self, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.propensity_ is None:  # prior only: nothing compared, no propensity
            return np.full(len(Xa), np.nan), np.where(self._unseen(Xa), self._unseen_reason(), "").astype(object)
        return self._trim_overlap(Xa)

    @staticmethod
    def _unseen_reason(col: str = "centre") -> str:
        return (
            f"outside overlap: {col} not among the values in the training records "
            "(the benefit of a dose now depends on the usual care there)"
        )

    def _trim_overlap(self, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Propensity of tocilizumab now and the trimming reason ("" inside the overlap). A patient
        whose value of a text feature column (a centre) was not seen in training, or is blank, is
        outside too: "not now" means that centre's usual care, which the records do not show."""
        e = self.propensity_.inplace_predict(Xa)
        if not len(Xa):
            return e, np.array([], dtype=str)
        reason = trim_reason(e, self.trim)
        blocks: dict[str, list[int]] = {}
        for i, name in enumerate(self.feature_names_in_):
            if (category := category_of(str(name))) is not None:
                blocks.setdefault(category[0], []).append(i)
        for col, block in blocks.items():
            unknown = np.isnan(Xa[:, block]).all(axis=1)
            reason = np.where(unknown, self._unseen_reason(col), reason)
        return e, reason

    def forest_interval(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The causal forest's 95% interval as distilled, before it is stretched to hold the benefit."""
        Xa = self._array(X)
        ends = [r.inplace_predict(Xa) for r in self.interval_]
        return np.minimum(*ends), np.maximum(*ends)  # two regressors distilled apart can cross

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """SHAP values of the benefit, in days (last column: the bias); each row adds up to its benefit.
        A risk-based benefit (``extrapolated``, ``prior``) is explained by the risk model's TreeSHAP
        values on the log odds, rescaled to days as :class:`RiskEffect` does."""
        Xa = self._array(X)
        if self.effect_ is None:  # prior only
            out = np.zeros((len(Xa), Xa.shape[1] + 1), dtype=np.float32)
        elif self.risk_effect_ is not None:
            out = self.risk_effect_.contributions(Xa)
        else:
            out = self.effect_.predict(xgb.DMatrix(Xa), pred_contribs=True)
        # rows whose benefit comes from the calibrated risk model (a risk-based choice explains its
        # extrapolated rows with its own booster, as inside the overlap)
        kinds = ("compared", "extrapolated", "prior") if self._by_calibrated_risk() else ("extrapolated", "prior")
        by_risk = np.isin(self._basis(Xa), kinds) if len(Xa) else np.zeros(0, dtype=bool)
        if by_risk.any():
            out = np.array(out, dtype=np.float32)
            out[by_risk] = self._risk_contributions(Xa[by_risk])
        return out

    def _risk_contributions(self, Xa: np.ndarray) -> np.ndarray:
        phi = np.asarray(self.risk_.contributions(Xa), dtype=float)
        margin, base = phi.sum(axis=1), phi[:, -1]
        scale = self.effect_scale_["scale"]
        b = scale * self.risk_.calibrator_.predict(_sigmoid(margin))
        b0 = scale * self.risk_.calibrator_.predict(_sigmoid(base))
        moved = np.abs(margin - base) > 1e-9
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(moved, (b - b0) / (margin - base), 0.0)
        out = phi * slope[:, None]
        out[:, -1] = b0
        return out.astype(np.float32)

    # -- files ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.effect_ is not None:  # none when prior only
            self.effect_.save_model(d / "effect.json")  # a risk-based candidate's risk booster, or the distilled one
            for end, r in zip(INTERVAL_ENDS, self.interval_, strict=True):
                r.save_model(d / f"effect_{end}.json")
            self.propensity_.save_model(d / "propensity.json")
        self.risk_.save(d / "risk")
        settings = {
            "params": self.get_params() | {"candidates": list(self.candidates), "nuisance_params": None},
            "feature_names": list(self.feature_names_in_),
            "chosen": self.chosen_,
            "interval": "causal_forest",
            "nuisance_params": self.nuisance_params_,
            "propensity_auroc": self.propensity_auroc_,
            "trim_counts": self.trim_counts_,
            "ate": self.ate_,
            "ate_all": self.ate_all_,
            "ate_severe": self.ate_severe_,
            "selection": self.selection_.to_dict(orient="index"),
            "effect": self.risk_effect_.to_dict() if self.risk_effect_ else {"form": "distilled"},
            "direction_notes": list(self.direction_notes_),
            "effect_scale": self.effect_scale_,
            "validation": self.validation_.to_dict() if self.validation_ is not None else None,
            "prior_only": bool(getattr(self, "prior_only_", False)),
        }
        (d / SETTINGS_FILE).write_text(json.dumps(settings, indent=1, default=float))
        self.balance_.to_csv(d / "balance.csv")

    @classmethod
    def load(cls, directory: str | Path) -> BenefitModel:
        d = Path(directory)
        s = json.loads((d / SETTINGS_FILE).read_text())
        if s.get("interval") != "causal_forest":
            raise CrsmlError(
                f"{d} was saved by an older crsml whose benefit_low/benefit_high were bootstrap "
                "percentiles, not 95% intervals; train the model again"
            )
        m = cls(**(s["params"] | {"candidates": tuple(s["params"]["candidates"])}))
        m.feature_names_in_ = np.asarray(s["feature_names"], dtype=object)
        m.n_features_in_ = len(m.feature_names_in_)
        m.prior_only_ = bool(s.get("prior_only", False))
        if m.prior_only_:
            m.effect_ = m.interval_ = m.propensity_ = m.risk_effect_ = None
        else:
            m.effect_ = xgb.Booster(model_file=str(d / "effect.json"))
            form = s.get("effect", {"form": "distilled"})  # absent before risk-based candidates were exported as is
            m.risk_effect_ = RiskEffect.from_dict(form, m.effect_) if form["form"] != "distilled" else None
            m.interval_ = tuple(xgb.Booster(model_file=str(d / f"effect_{end}.json")) for end in INTERVAL_ENDS)
            m.propensity_ = xgb.Booster(model_file=str(d / "propensity.json"))
        m.risk_ = XGBRiskClassifier.load(d / "risk")
        m.chosen_, m.nuisance_params_ = s["chosen"], s["nuisance_params"]
        m.propensity_auroc_, m.trim_counts_ = s["propensity_auroc"], s["trim_counts"]
        m.ate_, m.ate_all_, m.ate_severe_ = s["ate"], s["ate_all"], s["ate_severe"]
        m.selection_ = pd.DataFrame.from_dict(s["selection"], orient="index")
        m.direction_notes_ = list(s.get("direction_notes", []))  # absent before the direction guard
        m.balance_ = pd.read_csv(d / "balance.csv", index_col=0) if (d / "balance.csv").exists() else None
        # absent before every eligible patient was given a benefit and before the validation
        m.effect_scale_ = s.get("effect_scale")
        m.validation_ = BenefitValidation.from_dict(s["validation"]) if s.get("validation") else None
        return m


class RiskEffect:
    """A risk-based candidate exported exactly: ``benefit = g(risk(x))`` with the candidate's risk
    booster (probability of grade >= 3 without tocilizumab now, on median-imputed features) and
    ``g`` one scale factor (``risk_scaled``) or the effect of the risk quarter (``risk_strata``).

    Distilling it into another regressor would only add error (it cost 0.011 of the oracle's
    gain at 24 h). Its SHAP values in days are the booster's TreeSHAP values on the log-odds,
    each patient's rescaled so they add up to ``benefit - g(base)``: a monotone ``g`` keeps
    their signs and their order within the patient.
    """

    def __init__(
        self,
        form: str,
        booster: xgb.Booster,
        medians: np.ndarray,
        scale: float = 0.0,
        edges: np.ndarray | None = None,
        effects: np.ndarray | None = None,
    ):
        self.form = form
        self.booster = booster
        self.medians = np.asarray(medians, dtype=np.float32)
        self.scale = scale
        self.edges = np.asarray(edges if edges is not None else [], dtype=float)
        self.effects = np.asarray(effects if effects is not None else [], dtype=float)

    @classmethod
    def from_candidate(cls, c: Candidate) -> RiskEffect | None:
        """The exact export of a fitted risk-based candidate (None for the other candidates, and
        for a risk model that could not be fitted, whose benefit is a constant)."""
        if c.name not in ("risk_scaled", "risk_strata") or c.risk_model_ is None:
            return None
        extra = {"scale": c.scale_} if c.name == "risk_scaled" else {"edges": c.edges_, "effects": c.effects_}
        return cls(c.name, c.risk_model_.get_booster(), c.imputer_.statistics_, **extra)

    def _margin_input(self, Xa: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(Xa), self.medians, Xa).astype(np.float32)

    def _g(self, risk: np.ndarray) -> np.ndarray:
        return risk_benefit(self.form, risk, self.scale, self.edges, self.effects)

    def predict(self, Xa: np.ndarray) -> np.ndarray:
        if not len(Xa):
            return np.zeros(0, dtype=np.float32)
        return self._g(self.booster.inplace_predict(self._margin_input(Xa)).astype(float)).astype(np.float32)

    def contributions(self, Xa: np.ndarray) -> np.ndarray:
        phi = self.booster.predict(xgb.DMatrix(self._margin_input(Xa)), pred_contribs=True).astype(float)
        margin, base = phi.sum(axis=1), phi[:, -1]
        # the benefit as predicted (not g of the summed margin, which can round across a stratum edge)
        b, b0 = self.predict(Xa).astype(float), self._g(_sigmoid(base))
        moved = np.abs(margin - base) > 1e-9
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(moved, (b - b0) / (margin - base), 0.0)
        if self.form == "risk_scaled":  # the derivative where the margin equals the base
            s = _sigmoid(margin)
            slope = np.where(moved, slope, self.scale * s * (1 - s))
        out = phi * slope[:, None]
        out[:, -1] = b0
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "medians": self.medians.tolist(),
            "scale": float(self.scale),
            "edges": self.edges.tolist(),
            "effects": self.effects.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], booster: xgb.Booster) -> RiskEffect:
        return cls(
            d["form"],
            booster,
            np.asarray(d["medians"], dtype=np.float32),
            d["scale"],
            np.asarray(d["edges"]),
            np.asarray(d["effects"]),
        )


def wilson(p: np.ndarray, n: float, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's 95% score interval of a proportion ``p`` observed on ``n`` patients."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def prior_note(ate: dict[str, float]) -> str:
    """Why every benefit is ``prior``: the records cannot tell the average benefit from 0."""
    ci = f"{ate['ate']:.3f} days, 95% CI {ate['low']:.3f} to {ate['high']:.3f}"
    what = "show no benefit of tocilizumab now" if ate["ate"] <= 0 else "cannot tell the average benefit from 0"
    return (
        f"these records {what} (average {ci}), though trials show it lowers severe CRS: every benefit is the "
        "risk times the literature's effect (benefit_basis prior); it ranks patients by risk, and its size is "
        "the literature's, not these records'"
    )


def direction_notes(chosen: Candidate, selection: pd.DataFrame) -> list[str]:
    """What the user must know about the direction of the benefit: a risk-based benefit whose
    average the records cannot tell from 0 (or put below it), or a free-form learner that ranks
    patients against their risk. Shown in the training log, the card and the scores."""
    notes = []
    a = getattr(chosen, "effect_interval_", None)
    if chosen.name in ("risk_scaled", "risk_strata") and a is not None:
        ci = f"{a['ate']:.3f} days, 95% CI {a['low']:.3f} to {a['high']:.3f}"
        if getattr(chosen, "raw_scale_", 1.0) <= 0 or a["ate"] <= 0:
            notes.append(
                f"these records show no benefit of tocilizumab now (average {ci}), though trials show it "
                "lowers severe CRS: the benefit is set to 0 and cannot rank patients; rank them by risk"
            )
        elif a["low"] <= 0:
            notes.append(
                f"the average benefit's interval includes 0 ({ci}): these records cannot show its size; "
                "benefit ranks patients as their risk does"
            )
    elif "rank_corr_with_risk_scaled" in selection and chosen.name in selection.index:
        r = float(selection.loc[chosen.name, "rank_corr_with_risk_scaled"])
        if r < 0:
            notes.append(
                f"the chosen {chosen.name} ranks patients against their risk (Spearman {r:.2f} with the "
                "risk-based benefit), which no trial supports; prefer ranking by risk"
            )
    return notes


def choose(selection: pd.DataFrame) -> str:
    """The candidate whose out-of-fold ranking the doubly robust scores show best (highest
    AUTOC) among those shown better than ranking by risk (the lower end of the paired bootstrap
    interval of their AUTOC difference above 0); ``risk_scaled`` when none is. A learner whose
    heterogeneity is not shown better than risk's is not shipped over it.

    A selection without RATE columns (saved by an older crsml) keeps the older rule: the lowest
    held-out DR loss, unless it beats ``risk_scaled`` by less than one standard error."""
    if "autoc" in selection:
        shown = selection[(selection["autoc_vs_risk_low"] > 0) & (selection.index != "risk_scaled")]
        return str(shown["autoc"].idxmax()) if len(shown) else "risk_scaled"
    best = str(selection["dr_loss"].idxmin())
    row = selection.loc[best]
    if best != "risk_scaled" and row["vs_risk_scaled"] + row["vs_risk_scaled_se"] >= 0:
        return "risk_scaled"
    return best


def _native(p: dict[str, Any], objective: str) -> dict[str, Any]:
    return native_params(p) | {"objective": objective, "max_bin": MAX_BIN}
