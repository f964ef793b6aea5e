"""``crsml train --task tocilizumab_benefit``: emulate the decision at the landmark, fit the
benefit model, log its diagnostics to MLflow and export it like the risk models."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.causal.benefit import BenefitModel
from crsml.causal.diagnostics import DEFAULT_SPLITS, DEFAULT_TRIM, plot_overlap
from crsml.causal.learners import CANDIDATES
from crsml.causal.trial import DEFAULT_GRACE_H, emulate_trial
from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.features.builder import LandmarkFeatures
from crsml.labels import check_window
from crsml.models.bundle import ModelBundle

TASK = "tocilizumab_benefit"


@dataclass
class BenefitSettings:
    """Everything that decides a benefit training run (logged as MLflow parameters)."""

    landmark_h: float = 48.0
    grace_h: float = DEFAULT_GRACE_H
    horizon_h: float = 14 * 24.0
    trials: int = 10
    folds: int = 3
    trim: float = DEFAULT_TRIM
    ate_splits: int = DEFAULT_SPLITS  # random cross-fitting splits behind the average benefit
    seed: int = 0
    candidates: tuple[str, ...] = CANDIDATES
    window: str = "emulated"
    extra_patient_columns: tuple[str, ...] = ()  # e.g. ("site",) when records pool several centres
    register_name: str | None = None  # None: crsml-tocilizumab_benefit; "" to skip

    def __post_init__(self) -> None:
        check_window(self.landmark_h, self.horizon_h)
        if not self.grace_h > 0:
            raise CrsmlError(f"--grace-h must be above 0 hours, not {self.grace_h:g}")
        if not 0 < self.trim < 0.5:
            raise CrsmlError(f"--trim must lie between 0 and 0.5, not {self.trim:g}")
        if self.trials < 1:
            raise CrsmlError("--trials must be at least 1")
        if self.ate_splits < 1:
            raise CrsmlError("ate_splits must be at least 1")


@dataclass
class BenefitResult:
    bundle: ModelBundle
    counts: dict[str, Any]
    X: pd.DataFrame = field(repr=False)
    treated: np.ndarray = field(repr=False)
    run_id: str | None = None
    model_dir: Path | None = None


def benefit_data(cohort: Cohort, s: BenefitSettings) -> tuple[LandmarkFeatures, pd.DataFrame, pd.DataFrame, dict]:
    """Feature builder (treatments strictly before ``L``), eligible rows, their trial columns and counts."""
    fb = LandmarkFeatures(landmark_h=s.landmark_h, treatments_before_landmark="strict",
                          extra_patient_columns=s.extra_patient_columns).fit(cohort)
    X, _ = fb.build(cohort)
    X = X.droplevel("landmark_h")
    trial = emulate_trial(cohort, s.landmark_h, s.grace_h, s.horizon_h, s.window).reindex(X.index)
    keep = trial["eligible"].to_numpy(dtype=bool)
    excluded = trial.loc[~keep, "reason"].str.replace(r"\s*\(.*\)$", "", regex=True).value_counts()
    counts = {"patients": int(len(cohort.patients)), "eligible": int(keep.sum()),
              "treated_now": int(trial.loc[keep, "treated"].sum()),
              "excluded": {str(k): int(v) for k, v in excluded.items()}}
    return fb, X[keep], trial[keep], counts


FEW_TREATED = 200


def thin_data_warnings(treated_now: int, propensity_auroc: float) -> list[str]:
    """What a user should know before trusting per-patient benefits from these records.

    ``FEW_TREATED``: on the simulator at 48 h, with 191 patients treated at the landmark no
    learner's lead over risk ranking was clear of its standard error in the truth-free
    criterion, and the learners ranked worse than risk (docs/tocilizumab_benefit.md).
    """
    out = []
    if treated_now < FEW_TREATED:
        out.append(f"only {treated_now} patients were given tocilizumab at the landmark; with fewer than "
                   f"{FEW_TREATED} the records can rarely show that any learner ranks patients better than their "
                   "risk does (docs/tocilizumab_benefit.md)")
    if propensity_auroc < 0.6:
        out.append(f"the propensity model barely tells the treated from the untreated (AUROC {propensity_auroc:.2f}): "
                   "either treatment at this landmark was close to random given the features, or there are too "
                   "few treated patients to learn who gets it")
    return out


def unused_centre_columns(patients: pd.DataFrame, used: tuple[str, ...]) -> list[str]:
    """Text columns of ``patients`` beyond DESIGN.md's that split the patients into a few groups
    (a centre, say) and are not features: usual care after the landmark, and so the benefit of
    treating now, can differ between centres (docs/tocilizumab_benefit.md)."""
    from crsml.features.clinical import MAX_CATEGORIES
    from crsml.tables import TABLES

    out = []
    for col in patients.columns:
        if col in used or col in TABLES["patients"].columns or col == "patient_id":
            continue
        s = patients[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if 2 <= s.nunique(dropna=True) <= MAX_CATEGORIES:
            out.append(str(col))
    return out


def train_benefit(cohort: Cohort, s: BenefitSettings, model_out: str | Path | None = None,
                  tracking_uri: str | None = None, progress: bool = True, log: Any = print) -> BenefitResult:
    from crsml.training import left_out

    fb, X, trial, counts = benefit_data(cohort, s)
    log(f"{TASK} at L = {s.landmark_h:g} h (grace {s.grace_h:g} h): {counts['eligible']} eligible, "
        f"{counts['treated_now']} given tocilizumab now; left out: {left_out(counts['excluded'])}")
    for col in unused_centre_columns(cohort.patients, s.extra_patient_columns):
        log(f"note: patients column {col!r} has {cohort.patients[col].nunique()} values and is not a feature; if it "
            f"names centres, their usual care after the landmark, and so the benefit of treating now, can differ: "
            f"consider --extra {col}")
    try:
        model = BenefitModel(candidates=s.candidates, trials=s.trials, folds=s.folds, trim=s.trim,
                             seed=s.seed, progress=progress, ate_splits=s.ate_splits).fit(X, trial["treated"], trial["severe_days"], trial["severe"])
    except ValueError as exc:
        raise CrsmlError(f"{TASK} at {s.landmark_h:g} h: {exc}") from exc
    counts["trimmed"] = model.n_trimmed_
    counts["trim"] = model.trim_counts_
    from crsml.training import _versions, data_digest

    metadata = {"grace_h": s.grace_h, "horizon_h": s.horizon_h, "counts": counts, "window": s.window,
                "data_digest": data_digest(X, trial["treated"].to_numpy()), "chosen": model.chosen_,
                "ate": model.ate_, "ate_severe": model.ate_severe_, "propensity_auroc": model.propensity_auroc_,
                "feature_medians": X.median().astype(float).fillna(0.0).to_dict(), "versions": _versions()}
    bundle = ModelBundle(TASK, float(s.landmark_h), fb, model.risk_, metadata, benefit=model)
    log(f"propensity AUROC {model.propensity_auroc_:.3f}; {model.n_trimmed_} patients outside overlap "
        f"(propensity outside [{s.trim:g}, {1 - s.trim:g}]) will be scored not_eligible")
    a = model.ate_
    log(f"average benefit (AIPW) over the {a['n']} patients inside overlap with cross-fitted propensity in "
        f"[{a['bound']:.3f}, {1 - a['bound']:.3f}] (Crump's bound): {a['ate']:.3f} severe-CRS days spared "
        f"(95% CI {a['low']:.3f} to {a['high']:.3f}; median of {a['splits']} cross-fitting splits, "
        f"which differ by SD {a['split_sd']:.3f})")
    worst = model.balance_["smd_weighted"].abs().dropna()
    if len(worst):
        log(f"covariate balance inside overlap after weighting: largest |SMD| {worst.max():.2f} ({worst.idxmax()}); "
            f"{int((worst > 0.1).sum())} of {len(worst)} features above 0.1 (evaluation/balance_smd.csv in MLflow)")
        if worst.max() > 0.25:
            log(f"warning: after weighting the treated still differ from the untreated by more than 0.25 SD in "
                f"{int((worst > 0.25).sum())} features; the average benefit leans on the outcome models there")
    log(f"chosen by held-out DR loss: {model.chosen_}")
    for w in thin_data_warnings(counts["treated_now"], model.propensity_auroc_):
        log(f"warning: {w}")
    result = BenefitResult(bundle, counts, X, trial["treated"].to_numpy(dtype=int))
    from crsml.models.export import save_pyfunc, staged
    from crsml.training import _example

    with staged(bundle, _example(bundle, X)) as exported:
        result.run_id = _log_run(result, s, tracking_uri, exported, log)
        if model_out is not None:
            result.model_dir = save_pyfunc(exported, model_out)
            log(f"model written to {result.model_dir}")
    return result


def _log_run(result: BenefitResult, s: BenefitSettings, tracking_uri: str | None, exported: dict[str, Any],
             log: Any) -> str:
    from crsml import tracking
    from crsml.models.export import log_pyfunc

    mlflow = tracking.start(f"crsml-{TASK}", tracking_uri)
    m = result.bundle.benefit
    assert m is not None
    with mlflow.start_run(run_name=f"{TASK}-L{s.landmark_h:g}") as run:
        params = asdict(s) | {"candidates": ",".join(s.candidates),
                              "extra_patient_columns": ",".join(s.extra_patient_columns)}
        mlflow.log_params(params | {"chosen": m.chosen_, "data_digest": result.bundle.metadata["data_digest"]})
        mlflow.set_tags({"crsml.task": TASK, "crsml.landmark_h": str(s.landmark_h), "crsml.chosen": m.chosen_})
        c = result.counts
        metrics = {"n_eligible": c["eligible"], "n_treated_now": c["treated_now"], "n_trimmed": c["trimmed"],
                   "propensity_auroc": m.propensity_auroc_}
        for key, a in (("ate_days", m.ate_), ("ate_severe", m.ate_severe_)):
            metrics |= {key: a["ate"], f"{key}_low": a["low"], f"{key}_high": a["high"]}
        metrics |= {"ate_n": m.ate_["n"], "ate_propensity_bound": m.ate_["bound"], "ate_split_sd": m.ate_["split_sd"]}
        for name, row in m.selection_.iterrows():
            metrics[f"dr_loss_{name}"] = float(row["dr_loss"])
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            m.selection_.to_csv(t / "selection.csv")
            m.balance_.to_csv(t / "balance_smd.csv")
            (t / "counts.json").write_text(json.dumps(c, indent=1))
            (t / "average_effect.json").write_text(json.dumps({"ate_days": m.ate_, "ate_severe": m.ate_severe_}, indent=1))
            plot_overlap(m.cross_fitted_propensity_, result.treated, t / "overlap.png", s.trim)
            mlflow.log_artifacts(str(t), artifact_path="evaluation")
        registered = f"crsml-{TASK}" if s.register_name is None else (s.register_name or None)
        log_pyfunc(exported, registered)
        log(f"MLflow run {run.info.run_id} in experiment crsml-{TASK} ({mlflow.get_tracking_uri()})")
        return run.info.run_id

