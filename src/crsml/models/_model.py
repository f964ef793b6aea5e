"""A trained crsml model: the whole path from cohort tables to predictions, as plain files.

A :class:`Model` holds the task it predicts (eligibility, score columns, card text), the fitted
landmark feature builder (JSON), the estimator (XGBoost JSON boosters plus JSON settings; a
:class:`~crsml.models.XGBRiskClassifier` or a :class:`~crsml.models.BenefitModel`, whichever
the task's ``model_kind`` names) and metadata (landmark, counts, digest, metrics). Loading reads
JSON and XGBoost files only; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from crsml.cohort import Cohort
from crsml.errors import CrsmlError
from crsml.features import LandmarkFeatures, features_from_dict, features_to_dict
from crsml.models._benefit import BenefitModel
from crsml.models._metadata import ModelMetadata
from crsml.models._risk import XGBRiskClassifier
from crsml.tasks import Task, get, task_from_dict

FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.csv"
CURVES_FILE = "curves.json"
MANIFEST_FILE = "manifest.json"
BUNDLE_DIR = "crsml"  # name of the model's files inside an MLflow model's artifacts

#: the estimator class of each task ``model_kind``
ESTIMATORS: dict[str, type] = {"risk": XGBRiskClassifier, "benefit": BenefitModel}


@dataclass
class Model:
    """A trained model for one task at one landmark.

    Attributes
    ----------
    task : the :class:`~crsml.tasks.Task` it predicts.
    landmark_h : the landmark it was trained and evaluated at, hours after infusion.
    features : the fitted :class:`~crsml.features.LandmarkFeatures`.
    estimator : the fitted estimator (``predict_frame``, ``score_rows``, ``contributions``).
    metadata : a :class:`ModelMetadata`: counts, data digest, settings, figures and library
        versions (no patient rows or ids); a plain dict given here becomes one.
    evaluation : out-of-fold metrics with intervals, beside the baselines (risk tasks).
    curves : out-of-fold ROC, calibration and decision-curve points (risk tasks).
    """

    task: Task
    landmark_h: float
    features: LandmarkFeatures
    estimator: XGBRiskClassifier | BenefitModel
    metadata: ModelMetadata = field(default_factory=ModelMetadata)
    evaluation: pd.DataFrame | None = None
    curves: dict[str, Any] | None = None
    #: where a loaded model came from: its files' digest (SHA-256 of the manifest), and its registered
    #: name and version when loaded from the registry (not saved: it describes this copy)
    source: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, ModelMetadata):
            self.metadata = ModelMetadata.from_dict(dict(self.metadata))

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.estimator.feature_names_in_]

    @property
    def score_columns(self) -> tuple[str, ...]:
        return self.task.score_columns

    @property
    def landmarks(self) -> tuple[float, ...]:
        """A landmark supermodel's grid (it predicts at any time from its first to its last
        landmark); ``()`` for a model of one landmark."""
        if not getattr(self.features, "landmark_time", False):
            return ()
        return tuple(float(x) for x in (self.metadata.landmarks or np.atleast_1d(self.features.landmark_h)))

    def at(self, landmark_h: float) -> Model:
        """This model predicting at ``landmark_h`` alone: its features built at that time (the
        same fitted builder). A landmark supermodel takes any time in its grid's range (refused
        outside it; the grid stays in ``landmarks``); a model of one landmark any time, outside
        its evaluation unless it is its own."""
        if self.landmarks:
            self.check_time(float(landmark_h))
        if [float(x) for x in np.atleast_1d(self.features.landmark_h)] == [float(landmark_h)]:
            return self
        settings = features_to_dict(self.features)
        settings["params"]["landmark_h"] = float(landmark_h)
        return replace(self, landmark_h=float(landmark_h), features=features_from_dict(settings))

    def check_time(self, at_h: float) -> None:
        """Refuse, in one line, a time a landmark supermodel cannot predict at (outside its grid's
        range), or any other time than its own for a model of one landmark."""
        grid = self.landmarks
        if not grid:
            raise CrsmlError(
                f"--at-h {at_h:g}: this model was trained at one landmark ({self.landmark_h:g} h); "
                "train a landmark supermodel (crsml train --landmarks 12:120:12) to score at any hour"
            )
        if not (min(grid) <= float(at_h) <= max(grid)):
            raise CrsmlError(
                f"--at-h {at_h:g}: outside the landmark supermodel's range, {min(grid):g} to {max(grid):g} h "
                "after infusion"
            )

    def check_features(self) -> None:
        """Refuse a model whose estimator uses features its feature builder does not build (its
        files come from different models, or were edited)."""
        unknown = [f for f in self.feature_names if f not in set(self.features.feature_names_out_)]
        if unknown:
            raise CrsmlError(
                f"model is inconsistent: features {unknown[:5]} are not built by its feature settings "
                f"({len(unknown)} in all); the model's files come from different models"
            )

    def transform(self, cohort: Cohort) -> pd.DataFrame:
        """The model's feature rows of the eligible patients of ``cohort``."""
        return self.features.transform(cohort)[self.feature_names]

    def predict_features(self, X: pd.DataFrame) -> pd.DataFrame:
        """Prediction columns for a feature frame with the model's feature columns."""
        return self.estimator.predict_frame(X)

    def predict(self, cohort: Cohort) -> pd.DataFrame:
        """Predictions for the eligible patients of ``cohort`` (``crsml.score`` gives every patient a row)."""
        return self.predict_features(self.transform(cohort))

    def explainable(self, cohort: Cohort) -> pd.DataFrame:
        """Feature rows of the patients the model gives its prediction for: eligible for the task
        and, for a benefit model, inside its overlap."""
        X, elig = self.features.build(cohort)
        elig = self.task.eligibility(cohort, self.landmark_h, base=elig)
        X = X[elig.set_index(["patient_id", "landmark_h"])["eligible"].reindex(X.index).to_numpy(dtype=bool)]
        X = X[self.feature_names]
        return X[self.estimator.explainable(X)] if len(X) else X

    def save(self, directory: str | Path) -> Path:
        """Write the model's files (JSON and XGBoost JSON) to ``directory``, with a manifest of
        their SHA-256 (:func:`write_manifest`)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / FEATURES_FILE).write_text(json.dumps(features_to_dict(self.features), indent=1))
        self.estimator.save(d / self.estimator.DIRECTORY)
        meta = {
            "task": self.task.name,
            "landmark_h": self.landmark_h,
            "task_params": self.task.get_params(),
            **self.metadata.to_dict(),
        }
        (d / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=_json_default))
        if self.evaluation is not None:
            self.evaluation.to_csv(d / EVALUATION_FILE)
        if self.curves is not None:
            (d / CURVES_FILE).write_text(json.dumps(self.curves, default=_json_default))
        write_manifest(d)
        return d

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Load ``models/NAME`` (an exported MLflow model) or a directory written by :meth:`save`.

        The files are checked against the model's manifest first; a file that is missing,
        changed or malformed is refused in one line naming it (:class:`~crsml.errors.CrsmlError`).
        """
        d = find_model_files(path)
        verify_manifest(d, path)
        try:
            model = cls._load(d)
            digest_of = d / MANIFEST_FILE if (d / MANIFEST_FILE).exists() else d / METADATA_FILE
            model.source = {"digest": _sha256(digest_of)}
            return model
        except CrsmlError:
            raise
        except (OSError, ValueError, KeyError, TypeError, xgb.core.XGBoostError) as exc:
            raise CrsmlError(
                f"model {path}: {_which_file(exc, d)} cannot be read as a crsml model file "
                f"({type(exc).__name__}); export the model again"
            ) from None

    @classmethod
    def _load(cls, d: Path) -> Model:
        meta = json.loads((d / METADATA_FILE).read_text())
        name = meta.pop("task")
        params = meta.pop("task_params", None)
        if params is None:  # saved before tasks were objects: its settings sit in the metadata
            accepted = get(name).get_params()
            params = {k: meta[k] for k in accepted if k in meta}
        task = task_from_dict({"name": name, "params": params})
        evaluation = pd.read_csv(d / EVALUATION_FILE, index_col=0) if (d / EVALUATION_FILE).exists() else None
        curves = json.loads((d / CURVES_FILE).read_text()) if (d / CURVES_FILE).exists() else None
        kind = ESTIMATORS[task.model_kind]
        model = cls(
            task=task,
            landmark_h=float(meta.pop("landmark_h")),
            features=features_from_dict(json.loads((d / FEATURES_FILE).read_text())),
            estimator=kind.load(d / kind.DIRECTORY),
            metadata=ModelMetadata.from_dict(meta),
            evaluation=evaluation,
            curves=curves,
        )
        model.check_features()
        return model


def write_manifest(directory: str | Path) -> Path:
    """``manifest.json``: the SHA-256 of every file of a model directory (checked on loading)."""
    d = Path(directory)
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    digests = {p.relative_to(d).as_posix(): _sha256(p) for p in files}
    (d / MANIFEST_FILE).write_text(json.dumps({"sha256": digests}, indent=1, sort_keys=True))
    return d / MANIFEST_FILE


def verify_manifest(d: Path, shown: str | Path) -> None:
    """Refuse a model directory whose files differ from its manifest, naming the first file."""
    m = d / MANIFEST_FILE
    if not m.exists():
        return  # exported before manifests: loaded as it is
    try:
        digests = json.loads(m.read_text())["sha256"]
        digests = {str(k): str(v) for k, v in digests.items()}
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        raise CrsmlError(f"model {shown}: {MANIFEST_FILE} is not valid; export the model again") from None
    for rel, digest in digests.items():
        f = d / rel
        if not f.is_file():
            raise CrsmlError(f"model {shown}: file {rel} is missing")
        if _sha256(f) != digest:
            raise CrsmlError(
                f"model {shown}: file {rel} was changed after export (SHA-256 differs from "
                f"{MANIFEST_FILE}); export the model again"
            )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _which_file(exc: BaseException, d: Path) -> str:
    """The model file an error came from, as far as it says (else 'a file')."""
    text = str(exc)
    for p in sorted(d.rglob("*"), key=lambda q: -len(str(q))):
        if p.is_file() and (str(p) in text or p.name in text):
            return f"file {p.relative_to(d).as_posix()}"
    return "a file"


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def find_model_files(path: str | Path) -> Path:
    """The directory of a model's files inside ``models/NAME`` (an MLflow model), or itself."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CrsmlError(f"model {path} is a file; give the model's directory (models/NAME)")
    for candidate in (p, p / "artifacts" / BUNDLE_DIR, p / BUNDLE_DIR):
        if (candidate / METADATA_FILE).exists():
            return candidate
    raise CrsmlError(f"{path}: not a crsml model (no {METADATA_FILE} found)")
