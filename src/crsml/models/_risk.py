"""The risk classifier: XGBoost tuned by Optuna inside patient-level cross-validation, then
calibrated by cross-validation. A scikit-learn estimator whose fitted state saves as XGBoost's
own JSON plus a JSON settings file, so loading it unpickles nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from crsml.errors import CrsmlError
from crsml.features import LANDMARK_TIME_FEATURE
from crsml.models._calibration import LANDMARK_METHOD, Calibrator, choose_calibration
from crsml.models._folds import patient_groups, stratified_folds
from crsml.models._xgb import (
    CHECKPOINT_EVERY,
    MAX_BIN,
    MAX_ROUNDS,
    base_params,
    native_params,
    suggest,
    tpe_study,
)

BOOSTER_FILE = "booster.json"  # the best trial's booster; the other members' are booster_<i>.json
SETTINGS_FILE = "classifier.json"
# A trial is not pruned before its first fold has grown this many rounds, so that a slow
# learning rate is judged on more than its first trees.
PRUNE_AFTER_ROUNDS = 200

# Features whose published direction is fixed: a higher value never lowers the risk. Constraining
# them (XGBoost monotone constraints) keeps small cohorts from learning reversed steps by chance.
# ASTCT grade and organ support: Lee et al., BBMT 2019; EASIX/m-EASIX: Pennisi et al., Blood Adv
# 2021; peak IL-6 / IFN-gamma: Teachey et al., Cancer Discov 2016; fever: Hay et al., Blood 2017.
MONOTONE_INCREASING = (
    "grade_current",
    "grade_max",
    "o2_support_max",
    "vasopressors_max",
    "hypotension_any",
    "easix_lm",
    "measix_lm",
    "il6_max",
    "ifng_max",
    "temp_max",
    "hours_febrile",
)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log loss of probabilities ``p`` for outcomes ``y`` (clipped away from 0 and 1)."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _fold_curve(
    params: dict[str, Any],
    dtr: xgb.DMatrix,
    dva: xgb.DMatrix,
    y: np.ndarray,
    rounds: int,
    patience: int | None = None,
    on_checkpoint: Callable[[list[float]], None] | None = None,
) -> np.ndarray:
    """Validation log loss of one inner fold after every ``CHECKPOINT_EVERY`` rounds.

    The booster grows a round at a time, as ``xgb.train`` grows it, and stops once ``patience``
    checkpoints pass without a lower loss; ``on_checkpoint`` sees the curve so far (to report
    to Optuna, which may prune the trial there).
    """
    booster = xgb.Booster(params, [dtr])
    curve: list[float] = []
    for it in range(rounds):
        booster.update(dtr, it)
        if (it + 1) % CHECKPOINT_EVERY:
            continue
        curve.append(_log_loss(y, booster.predict(dva, iteration_range=(0, it + 1))))
        if on_checkpoint is not None:
            on_checkpoint(curve)
        if patience and len(curve) - 1 - int(np.argmin(curve)) >= patience:
            break
    return np.asarray(curve)


def _data_digest(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the training rows and labels (binds a stored Optuna study to its data)."""
    h = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    h.update(np.asarray(y, dtype=np.int8).tobytes())
    return h.hexdigest()


def _booster_file(i: int) -> str:
    return BOOSTER_FILE if i == 0 else f"booster_{i}.json"


def _mean_proba(boosters: list[xgb.Booster], predict: Callable[[xgb.Booster, bool], np.ndarray]) -> np.ndarray:
    """Probability from the members' mean log odds; one member's own probability as it is
    (``predict(booster, margin)`` gives log odds when ``margin``, else probabilities)."""
    if len(boosters) == 1:
        return predict(boosters[0], False)
    return expit(np.mean([predict(b, True) for b in boosters], axis=0, dtype=np.float64))


def _mean_curve(curves: list[np.ndarray]) -> np.ndarray:
    """Mean over folds of the checkpoints every fold reached (a fold may have stopped early)."""
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0)


class XGBRiskClassifier(ClassifierMixin, BaseEstimator):
    """Binary risk model.

    ``fit`` runs an Optuna study (TPE sampler seeded by ``seed``) whose trials are scored by
    the mean validation log loss over ``inner_folds`` stratified patient folds, at the best
    checkpoint of the mean curve. Each fold stops early once ``early_stopping_rounds`` pass
    without a lower loss; a trial is pruned (median rule) at a checkpoint of its first fold
    once that fold has grown more than ``PRUNE_AFTER_ROUNDS`` rounds, or after any fold. The
    ``ensemble_size`` best complete trials are refitted on all rows, each with its own rounds,
    and the model averages their log odds; the calibration is picked by cross-validation on the
    same average's inner out-of-fold predictions.

    Parameters
    ----------
    n_trials : Optuna trials.
    inner_folds : folds scoring each trial.
    seed : seeds the folds, the sampler and XGBoost.
    n_threads : XGBoost threads (default: all cores).
    storage : Optuna storage URL (for example ``postgresql://...``) so several machines can
        tune one study; in memory by default.
    study_name : name of the study in ``storage``.
    progress : show a progress bar over trials.
    monotone : feature names constrained to raise (never lower) the risk.
    early_stopping_rounds : rounds without a lower validation loss that end a fold of a
        trial (rounded up to checkpoints of ``CHECKPOINT_EVERY``); None trains every fold to
        the trial's ``max_rounds``.
    ensemble_size : how many of the best complete trials the final model averages (on the
        log-odds scale). The best few trials' inner losses differ by less than the noise of the
        inner folds, so averaging them is steadier than betting on the first (docs/risk_models.md:
        5 gained 0.002-0.005 AUROC on simulated cohorts), but scoring costs grow with the members'
        trees; 1, the default, keeps the best trial alone.

    Attributes
    ----------
    classes_ : the two outcome labels seen in ``fit``.
    n_features_in_, feature_names_in_ : the features it was fitted on (names when ``X`` was a DataFrame).
    members_ : the averaged trials: Optuna trial number, XGBoost parameters and rounds of each.
    boosters_ : the fitted XGBoost boosters, one per member (saved as XGBoost JSON).
    best_inner_logloss_ : the best trial's mean inner validation log loss.
    trials_ : every Optuna trial (a DataFrame: number, value, state, parameters, duration).
    calibrator_ : the calibration chosen by cross-validation (``none``, ``sigmoid`` or ``isotonic``).
    calibration_losses_ : each calibration's cross-validated log loss.
    best_params_, n_rounds_ : the best trial's parameters and rounds.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "inner_folds": [Interval(Integral, 2, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "storage": [str, None],
        "study_name": [str, None],
        "progress": ["boolean"],
        "monotone": [tuple, list],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left"), None],
        "ensemble_size": [Interval(Integral, 1, None, closed="left")],
        "fixed": [dict, None],
    }

    def __init__(
        self,
        n_trials: int = 30,
        inner_folds: int = 3,
        seed: int = 0,
        n_threads: int | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        progress: bool = False,
        monotone: tuple[str, ...] = MONOTONE_INCREASING,
        early_stopping_rounds: int | None = 100,
        ensemble_size: int = 1,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.n_trials = n_trials
        self.inner_folds = inner_folds
        self.seed = seed
        self.n_threads = n_threads
        self.storage = storage
        self.study_name = study_name
        self.progress = progress
        self.monotone = monotone
        self.early_stopping_rounds = early_stopping_rounds
        self.ensemble_size = ensemble_size
        self.fixed = fixed

    # -- fitting -------------------------------------------------------------------------
    def _base(self) -> dict[str, Any]:
        return base_params("binary:logistic", self.seed, self.n_threads)

    def _folds(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
    ) -> list[tuple[xgb.DMatrix, xgb.DMatrix, np.ndarray, np.ndarray]]:
        k = int(min(self.inner_folds, np.bincount(y, minlength=2).min()))
        if k < 2:
            raise ValueError("too few patients in the smaller class to tune (need at least 2 of each)")
        out = []
        for tr, va in stratified_folds(k, y, self.seed, groups):
            dtr = xgb.QuantileDMatrix(X[tr], label=y[tr], max_bin=MAX_BIN)
            # a plain DMatrix predicts the same as a QuantileDMatrix and far faster
            dva = xgb.DMatrix(X[va], label=y[va], nthread=self.n_threads or -1)
            out.append((dtr, dva, y[va].astype(float), va))
        return out

    def _study(self) -> optuna.Study:
        return tpe_study(
            self.seed,
            self.n_trials,
            self.storage,
            self.study_name,
            optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=PRUNE_AFTER_ROUNDS // CHECKPOINT_EVERY),
        )

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series) -> XGBRiskClassifier:
        """Tune, calibrate and refit on ``X`` (one row per patient, or per patient and landmark:
        then the inner folds keep each patient's rows together) and binary ``y``."""
        self._validate_params()
        groups = patient_groups(X)
        # scikit-learn's checks: a 2-d numeric X (missing values allowed), a binary target
        Xa, y = validate_data(self, X, y, dtype=np.float32, ensure_all_finite="allow-nan", ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) != 2:
            raise ValueError(
                f"Only binary classification is supported. XGBRiskClassifier predicts a binary outcome; "
                f"y has {len(encoder.classes_)} classes"
            )
        self.classes_ = encoder.classes_
        ya = encoder.transform(y).astype(int)
        Xa = np.ascontiguousarray(Xa)
        folds = self._folds(Xa, ya, groups)
        base = self._base()
        names = [str(c) for c in self._names()]
        if self.monotone and names:
            base["monotone_constraints"] = "(" + ",".join("1" if c in self.monotone else "0" for c in names) + ")"

        patience = -(-self.early_stopping_rounds // CHECKPOINT_EVERY) if self.early_stopping_rounds else None
        steps = MAX_ROUNDS // CHECKPOINT_EVERY  # Optuna steps: checkpoints of fold 0, then one per fold

        def objective(trial: optuna.Trial) -> float:
            params, rounds = suggest(trial)

            def report(curve: list[float]) -> None:
                trial.report(min(curve), len(curve) - 1)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            curves = []
            for i, (dtr, dva, yva, _) in enumerate(folds):
                curves.append(_fold_curve(base | params, dtr, dva, yva, rounds, patience, report if i == 0 else None))
                mean = _mean_curve(curves)
                trial.report(float(mean.min()), steps * (i + 1))
                if trial.should_prune():
                    raise optuna.TrialPruned()
            trial.set_user_attr("best_rounds", int((mean.argmin() + 1) * CHECKPOINT_EVERY))
            return float(mean.min())

        if self.fixed is not None:
            settings = dict(self.fixed)
            rounds = int(settings.pop("rounds"))
            self.members_ = [{"trial": None, "params": native_params(settings), "n_rounds": rounds}]
            self.trials_ = pd.DataFrame(columns=["number", "value", "state"])
        else:
            self._tune(base, folds, objective, Xa, ya)
        # calibration chosen on the ensemble's inner out-of-fold predictions
        oof = np.empty(len(ya))
        for dtr, dva, _, va in folds:
            oof[va] = _mean_proba(
                [xgb.train(base | m["params"], dtr, m["n_rounds"]) for m in self.members_],
                lambda b, out, d=dva: b.predict(d, output_margin=out),
            )
        if self.fixed is not None:  # no search: the inner log loss of the same out-of-fold fits, for the record
            self.best_inner_logloss_ = float(np.mean([_log_loss(ya[va], oof[va]) for *_, va in folds]))
        self.calibrator_, self.calibration_losses_ = choose_calibration(
            oof, ya, self.seed, groups=groups, landmark=self._landmarks(Xa)
        )
        dall = xgb.QuantileDMatrix(Xa, label=ya, max_bin=MAX_BIN)
        self.boosters_ = [xgb.train(base | m["params"], dall, m["n_rounds"]) for m in self.members_]
        return self

    def _tune(self, base, folds, objective, Xa, ya) -> None:
        """The Optuna search: ``members_`` are its best ``ensemble_size`` trials."""
        study = self._study()
        digest = _data_digest(Xa, ya)
        if self.storage is not None:  # a stored study resumes only for the data it was made for
            made_for = study.user_attrs.get("crsml_data_digest")
            if made_for is not None and made_for != digest:
                raise CrsmlError(
                    f"Optuna study {study.study_name!r} in --storage was made for other data (another "
                    "task, landmark or cohort); give a new --study-name to start anew, or the same "
                    "cohort and settings to resume it"
                )
            study.set_user_attr("crsml_data_digest", digest)
        done = sum(t.state.is_finished() for t in study.trials)
        todo = max(0, self.n_trials - done)
        if self.progress and todo:
            from crsml._progress import StageProgress

            with StageProgress(f"tuning ({todo} Optuna trials)", todo) as bar:
                study.optimize(objective, n_trials=todo, callbacks=[lambda s, t: bar.advance()])
        else:
            study.optimize(objective, n_trials=todo)
        complete = sorted(
            (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: (t.value, t.number)
        )
        if not complete:
            raise ValueError("no Optuna trial completed; raise n_trials")
        self.members_ = [
            {"trial": t.number, "params": native_params(t.params), "n_rounds": int(t.user_attrs["best_rounds"])}
            for t in complete[: int(self.ensemble_size)]
        ]
        self.best_inner_logloss_ = float(complete[0].value)
        self.trials_ = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))

    def refit_boosters(self, X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> XGBRiskClassifier:
        """A copy whose boosters are retrained on ``(X, y)`` with this model's chosen settings (each
        member's parameters and rounds, the monotone constraints) and its calibration kept: the
        refit of a prediction-instability bootstrap (Riley & Collins, Biom J 2023)."""
        new = copy.copy(self)
        base = self._base() | {"seed": int(seed)}
        names = [str(c) for c in self._names()]
        if self.monotone and names:
            base["monotone_constraints"] = "(" + ",".join("1" if c in self.monotone else "0" for c in names) + ")"
        d = xgb.QuantileDMatrix(self._array(X), label=np.asarray(y, dtype=int), max_bin=MAX_BIN)
        new.boosters_ = [xgb.train(base | m["params"], d, m["n_rounds"]) for m in self.members_]
        return new

    def _names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [] if names is None else list(names)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # XGBoost learns where missing values go
        tags.classifier_tags.multi_class = False
        return tags

    @property
    def best_params_(self) -> dict[str, Any]:
        """The best trial's XGBoost parameters (the first member's)."""
        return self.members_[0]["params"]

    @property
    def n_rounds_(self) -> int:
        """The best trial's rounds (the first member's)."""
        return self.members_[0]["n_rounds"]

    # -- the estimator protocol of crsml models (shared with BenefitModel) -----------------
    #: what the SHAP values explain, their unit, and how one prediction is written for people
    explains = ("risk", "log-odds", "{:.0%}")
    #: directory of a saved model that holds this estimator
    DIRECTORY = "classifier"

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """The prediction columns (``risk``), indexed like ``X``."""
        return pd.DataFrame({"risk": self.predict_proba(X)[:, 1]}, index=X.index)

    def score_rows(self, X: pd.DataFrame, contributions: bool) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray]:
        """Predictions for scoring, SHAP contributions when asked (one pass: the risk is taken
        from them), and which rows they explain (all of them)."""
        if contributions:
            risk, contribs = self.predict_with_contributions(X)
            return pd.DataFrame({"risk": risk}, index=X.index), contribs, np.ones(len(X), dtype=bool)
        return self.predict_frame(X), None, np.ones(len(X), dtype=bool)

    def explainable(self, X: pd.DataFrame) -> np.ndarray:
        """Rows given a prediction to explain (all of them)."""
        return np.ones(len(X), dtype=bool)

    def explained_value(self, X: pd.DataFrame) -> np.ndarray:
        """The quantity people read for each row (the calibrated risk)."""
        return self.predict_proba(X)[:, 1]

    # -- prediction ----------------------------------------------------------------------
    def _dmatrix(self, X: pd.DataFrame | np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(self._array(X), nthread=self.n_threads or -1)

    def _array(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "boosters_")
        names = self._names()
        if names and hasattr(X, "columns"):
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise ValueError(f"features missing from the input: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
            X = X[names]
        Xa = np.ascontiguousarray(X, dtype=np.float32)
        if Xa.ndim != 2:
            raise ValueError(f"Expected a 2-d array (one row per patient), got shape {Xa.shape}. Reshape your data")
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xa.shape[1]} features, but XGBRiskClassifier is expecting "
                f"{self.n_features_in_} features as input"
            )
        return Xa

    def predict_raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities: the members' mean log odds (in-place prediction, no DMatrix copy)."""
        Xa = self._array(X)
        return _mean_proba(
            self.boosters_, lambda b, out: b.inplace_predict(Xa, predict_type="margin" if out else "value")
        )

    def _landmarks(self, Xa: np.ndarray) -> np.ndarray | None:
        """Each row's landmark where the model has the landmark as a feature (a supermodel), for a
        calibration that depends on it; else None."""
        names = self._names()
        return Xa[:, names.index(LANDMARK_TIME_FEATURE)] if LANDMARK_TIME_FEATURE in names else None

    def _calibrated(self, raw: np.ndarray, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self.calibrator_.method != LANDMARK_METHOD:
            return self.calibrator_.predict(raw)
        return self.calibrator_.predict(raw, self._landmarks(self._array(X)))

    def predict_with_contributions(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated risk and TreeSHAP contributions from one pass: the contributions sum to the
        booster's log odds, so the risk needs no second prediction."""
        contribs = self.contributions(X)
        return self._calibrated(expit(contribs.sum(axis=1)), X), contribs

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probabilities of no outcome and of the outcome, one row per patient."""
        raw = self.predict_raw(X)
        p = self._calibrated(raw, X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The more likely class (the outcome when the calibrated risk is at least 0.5)."""
        outcome = (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
        return self.classes_[outcome]

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """TreeSHAP values on the log-odds scale from XGBoost (last column: the bias), averaged
        over the members: SHAP values add, so they are exactly those of the mean log odds."""
        d = self._dmatrix(X)
        if len(self.boosters_) == 1:
            return self.boosters_[0].predict(d, pred_contribs=True)
        return np.mean([b.predict(d, pred_contribs=True) for b in self.boosters_], axis=0, dtype=np.float64)

    # -- files ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Boosters in XGBoost's JSON format plus settings as JSON; nothing pickled."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(self.boosters_):
            b.save_model(d / _booster_file(i))
        settings = {
            "params": self.get_params() | {"monotone": list(self.monotone)},
            "feature_names": self._names() or None,
            "best_params": self.best_params_,
            "n_rounds": self.n_rounds_,
            "members": self.members_,
            "best_inner_logloss": self.best_inner_logloss_,
            "calibration": self.calibrator_.to_dict(),
            "calibration_losses": self.calibration_losses_,
        }
        (d / SETTINGS_FILE).write_text(json.dumps(settings, indent=1, default=float))

    @classmethod
    def load(cls, directory: str | Path) -> XGBRiskClassifier:
        d = Path(directory)
        s = json.loads((d / SETTINGS_FILE).read_text())
        m = cls(**(s["params"] | {"monotone": tuple(s["params"].get("monotone", ()))}))
        # a model saved before ensembles holds the best trial's booster alone
        m.members_ = s.get("members") or [{"trial": None, "params": s["best_params"], "n_rounds": s["n_rounds"]}]
        m.boosters_ = [xgb.Booster(model_file=str(d / _booster_file(i))) for i in range(len(m.members_))]
        if s["feature_names"] is not None:
            m.feature_names_in_ = np.asarray(s["feature_names"], dtype=object)
        m.n_features_in_ = m.boosters_[0].num_features()
        m.classes_ = np.array([0, 1])
        m.best_inner_logloss_ = s["best_inner_logloss"]
        m.calibrator_ = Calibrator.from_dict(s["calibration"])
        m.calibration_losses_ = s["calibration_losses"]
        return m
