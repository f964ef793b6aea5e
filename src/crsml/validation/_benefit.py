"""A saved benefit model judged on a new centre's cohort, without the truth.

No patient's benefit is ever observed, so the model is judged as GenericML and grf judge one: the
new cohort's own treatments and outcomes give cross-fitted doubly robust scores of the emulated
decision (nuisances with the model's tuned settings, refitted on the new patients, so that "not
now" means that centre's usual care), and those scores judge the model's benefit, and ranking by
its risk beside it, by BLP, GATES, CLAN and RATE (:func:`crsml.models.validate_benefit`). The model's
priorities were fitted on other patients, so no cross-fitting of them is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.evaluation import save_figure
from crsml.models import BenefitValidation, Model, aipw, crossfit, crump_bound, overlap, validate_benefit
from crsml.tasks import excluded_counts

FOLDS = 3


@dataclass
class BenefitEvaluation:
    """A benefit model judged on a cohort with treatments. Aggregates only.

    ``table`` has one row per ranking (``model``: the model's benefit; ``risk``: ranking by its
    risk without a dose now) with BLP, RATE and GATES figures; ``validation`` holds them all;
    ``average`` compares the AIPW average benefit on the new patients with the model's mean.
    """

    task: str
    landmark_h: float
    horizon_h: float
    model_info: dict[str, Any]
    flow: pd.DataFrame
    validation: BenefitValidation
    average: dict[str, float]
    n_boot: int
    seed: int
    notes: list[str] = field(default_factory=list)
    case_mix_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return self.validation.summary().rename(index={"benefit": "model"})

    def summary(self) -> pd.DataFrame:
        """The main figures with intervals, as text."""
        rows = {}
        a = self.average
        rows["average benefit on these patients (AIPW, days)"] = _fmt(a["ate"], a["low"], a["high"])
        rows["mean predicted benefit on the same patients (days)"] = f"{a['predicted']:.3f}"
        for name, label in (("model", "benefit"), ("risk", "ranking by risk")):
            r = self.table.loc[name]
            rows[f"BLP beta2, {label}"] = _fmt(r["beta2"], r["beta2_low"], r["beta2_high"])
            rows[f"AUTOC, {label} (days)"] = _fmt(r["autoc"], r["autoc_low"], r["autoc_high"])
            rows[f"GATES top minus bottom, {label} (days)"] = _fmt(
                r["top_minus_bottom"], r["top_minus_bottom_low"], r["top_minus_bottom_high"]
            )
        if self.validation.versus:
            v = self.validation.versus
            rows["AUTOC, benefit minus ranking by risk"] = _fmt(v["diff"], v["low"], v["high"])
        return pd.DataFrame({"value": rows})

    def to_dict(self) -> dict[str, Any]:
        """Every figure as JSON-able data (no patient rows, no identifiers)."""
        return _plain(
            {
                "task": self.task,
                "landmark_h": self.landmark_h,
                "horizon_h": self.horizon_h,
                "model": {k: v for k, v in self.model_info.items() if isinstance(v, str | int | float | type(None))},
                "n_boot": self.n_boot,
                "seed": self.seed,
                "flow": self.flow.reset_index().to_dict(orient="records"),
                "average": self.average,
                "validation": self.validation.to_dict(),
                "notes": self.notes,
            }
        )

    def plots(self, out_dir: str | Path) -> dict[str, Path]:
        """The TOC and GATES plots as PNGs in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return {
            "toc": save_figure(self.validation.plot_toc(), out / "toc.png"),
            "gates": save_figure(self.validation.plot_gates(), out / "gates.png"),
        }


def _plain(o: Any) -> Any:
    """Numpy scalars as Python numbers, through dicts and lists (for ``json.dumps``)."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    if isinstance(o, np.integer | np.bool_):
        return o.item()
    if isinstance(o, np.floating):
        return float(o)
    return o


def _fmt(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} ({lo:.3f} to {hi:.3f})"


def evaluate_benefit(model: Model, cohort: Cohort, n_boot: int = 1000, seed: int = 0) -> BenefitEvaluation:
    """Judge a benefit model on ``cohort`` (its treatments and CRS grades) without the truth.

    The emulated decision at the model's landmark gives each eligible patient's treatment now and
    severe-CRS days after it; propensity and outcome models with the model's settings are
    cross-fitted on these patients; the patients inside Crump's propensity bound are judged.
    Raises :class:`CrsmlError` when too few were treated now (or not) to cross-fit.
    """
    task, L, est = model.task, model.landmark_h, model.estimator
    X_all, base = model.features.build(cohort)
    trial = task.labels(cohort, L)
    if "landmark_h" in trial.index.names:
        trial = trial.reset_index(level="landmark_h", drop=True)
    ids = pd.Index(cohort.patients["patient_id"].astype(str))
    elig = task.eligibility(cohort, L, base=base).set_index("patient_id")
    eligible = elig["eligible"].reindex(ids).fillna(False).to_numpy(dtype=bool)
    eligible = eligible & trial["eligible"].reindex(ids).fillna(False).to_numpy(dtype=bool)
    keep = ids[eligible]
    X = X_all.reset_index(level="landmark_h", drop=True).reindex(keep)[model.feature_names]
    pred = est.predict(X)
    scored = (pred["benefit_basis"] != "").to_numpy()
    X, pred = X[scored], pred[scored]
    T = trial["treated"].reindex(X.index).to_numpy(dtype=int)
    Y = trial["severe_days"].reindex(X.index).to_numpy(dtype=float)
    need = 2 * FOLDS
    if T.sum() < need or (1 - T).sum() < need:
        raise CrsmlError(
            f"too few patients to judge a benefit model: {int(T.sum())} given tocilizumab at {L:g} h and "
            f"{int((1 - T).sum())} not (need {need} of each); the records must show both decisions"
        )
    Xa = X.to_numpy(dtype=np.float32)
    params = est.nuisance_params_
    nu = crossfit(Xa, T, Y, params["propensity"], params["outcome"], FOLDS, seed)
    region = overlap(nu.e, crump_bound(nu.e, est.trim))
    phi = nu.pseudo_outcome(T, Y, est.trim)
    if region.sum() < 20:
        raise CrsmlError(
            f"only {int(region.sum())} patients lie inside the propensity overlap of this cohort: too few to judge "
            "a benefit model (need 20)"
        )
    flow = pd.DataFrame(
        [
            {"step": "patients in the cohort", "n": len(ids) + len(cohort.invalid), "excluded": {}},
            {
                "step": "eligible at the landmark (not yet severe, not treated before)",
                "n": int(eligible.sum()),
                "excluded": excluded_counts(elig["reason"].reindex(ids).fillna("").astype(str)[~eligible]),
            },
            {"step": "given a benefit by the model", "n": int(scored.sum()), "excluded": {}},
            {"step": "given tocilizumab now", "n": int(T.sum()), "excluded": {}},
            {"step": "inside Crump's propensity bound (judged)", "n": int(region.sum()), "excluded": {}},
        ]
    ).set_index("step")
    b = pred["benefit"].to_numpy(dtype=float)
    r = pred["risk"].to_numpy(dtype=float)
    features = [c for c in est.validation_.clan.index if c in X.columns] if est.validation_ is not None else []
    validation = validate_benefit(
        phi[region],
        {"benefit": b[region], "risk": r[region]},
        X[features][region] if features else None,
        where="new cohort",
        seed=seed,
        n_boot=n_boot,
    )
    a = aipw(phi[region])
    average = {"ate": a["ate"], "low": a["low"], "high": a["high"], "predicted": float(b[region].mean())}
    notes = []
    if (pred["benefit_basis"] == "prior").any():
        notes.append(
            "the model's benefit is prior (the literature's effect times the risk): its ranking is the risk's, "
            "so the two rows judge the same ranking"
        )
    info = {
        "task": task.name,
        "landmark_h": L,
        "registered_name": model.source.get("registered_name"),
        "version": model.source.get("version"),
        "model_digest": model.source.get("digest"),
        "chosen": est.chosen_,
    }
    return BenefitEvaluation(task.name, L, float(task.horizon_h), info, flow, validation, average, n_boot, seed, notes)
