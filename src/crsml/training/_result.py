"""The result of training one task: the fitted :class:`~crsml.models.Model` and everything
known about how it was made, in one shape for every task (like EconML's inference results).

Fitting returns a :class:`TrainingResult` and has no side effects (what an MLflow run records of
it is built by :mod:`crsml.tracking`): logging to MLflow
(:func:`crsml.tracking.log_training`), exporting the model (:func:`crsml.tracking.export_model`)
and the model card (:func:`crsml.reporting.write_model_card`) are separate steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crsml.evaluation import plot_curves, plot_instability, save_figure
from crsml.models import BenefitValidation, Model, plot_overlap

MODEL_NAME = "crsml xgboost"


@dataclass
class TrainingResult:
    """A trained model with its evaluation.

    Attributes
    ----------
    model : the fitted :class:`~crsml.models.Model`.
    settings : the settings it was trained with.
    counts : patients used and left out (by reason); aggregates only.
    table : the summary table: out-of-fold metrics with 95% intervals beside the baselines (risk
        tasks) or the benefit candidates' held-out DR losses (benefit task).
    artifacts : tables (CSV), texts and JSON-able data logged beside the run.
    warnings : what the user should know before trusting the model.
    oof, y : out-of-fold predictions and labels (in memory only, never logged).
    overlap : cross-fitted propensity, treatment and trimming bound (benefit task).
    validation : BLP, GATES and RATE of the benefit from cross-fitted doubly robust scores (benefit task).
    caption : what :attr:`table` shows, in words.
    """

    model: Model
    settings: Any
    counts: dict[str, Any]
    table: pd.DataFrame
    artifacts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    folds: pd.DataFrame | None = None
    oof: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    y: np.ndarray | None = field(default=None, repr=False)
    X: pd.DataFrame | None = field(default=None, repr=False)
    overlap: tuple[np.ndarray, np.ndarray, float] | None = field(default=None, repr=False)
    validation: BenefitValidation | None = field(default=None, repr=False)
    caption: str = ""
    instability: np.ndarray | None = field(default=None, repr=False)
    formatter: Callable[[pd.DataFrame], pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def weak(self) -> list[str]:
        """Why the model should not be used (empty when nothing says so): see ``weak_model_reasons``."""
        return list(self.model.metadata.get("weak", []))

    @property
    def task(self) -> str:
        return self.model.task.name

    @property
    def title(self) -> str:
        return f"{self.task} at L = {self.model.landmark_h:g} h"

    def summary(self) -> pd.DataFrame:
        """The summary table (see :attr:`table`)."""
        return self.table

    def formatted(self) -> pd.DataFrame:
        """The summary table as text for people (estimates with their intervals)."""
        if self.formatter is not None:
            return self.formatter(self.table)
        return self.table.map(lambda v: f"{v:.4f}" if isinstance(v, float) else str(v))

    def plot_curves(self, out_dir: str | Path) -> dict[str, Path]:
        """ROC, calibration and decision-curve PNGs (out of fold, with the baselines)."""
        if self.model.curves is None:
            raise ValueError(f"{self.task} has no out-of-fold curves to plot")
        return plot_curves(self.model.curves, out_dir, MODEL_NAME, f"{self.task}, L = {self.model.landmark_h:g} h")

    def plot_overlap(self, path: str | Path) -> Path:
        """Histogram of the cross-fitted propensity by arm, with the trimming bounds (benefit task)."""
        if self.overlap is None:
            raise ValueError(f"{self.task} has no propensity model")
        e, treated, trim = self.overlap
        return plot_overlap(e, treated, path, trim)

    def plot_instability(self, path: str | Path) -> Path:
        """The prediction-instability plot (Riley & Collins 2023): each training patient's risk from
        the model against the risks of the bootstrap refits (in memory only; the model keeps a binned
        summary)."""
        if self.instability is None or self.X is None:
            raise ValueError(f"{self.task}: prediction instability was not checked (instability_boot=0)")
        p0 = self.model.estimator.predict_proba(self.X[self.model.feature_names])[:, 1]
        return save_figure(plot_instability(p0, self.instability), path)

    def plots(self, out_dir: str | Path) -> list[Path]:
        """Every plot this result has, written to ``out_dir``."""
        out = Path(out_dir)
        paths: list[Path] = []
        if self.model.curves is not None:
            paths += list(self.plot_curves(out / "plots").values())
        if self.instability is not None and self.X is not None:
            (out / "plots").mkdir(parents=True, exist_ok=True)
            paths.append(self.plot_instability(out / "plots" / "instability.png"))
        if self.overlap is not None:
            paths.append(self.plot_overlap(out / "overlap.png"))
        if self.validation is not None:
            self.validation.plot_toc(out / "toc.png")
            self.validation.plot_gates(out / "gates.png")
            paths += [out / "toc.png", out / "gates.png"]
        return paths
