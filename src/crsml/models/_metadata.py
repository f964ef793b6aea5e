"""What a trained model records about how it was made: a typed, versioned record.

Every field is an aggregate (counts, digests, settings, figures); none holds a patient row or
identifier. A field left ``None`` was not recorded for this kind of model (a benefit model has
no cross-validation settings; a risk model no grace window) and is not written. The record still
reads like the dictionary it replaced (``metadata["lineage"]``, ``metadata.get("cv", {})``), so
notebooks written against it keep working.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any

#: version of the record written by :meth:`ModelMetadata.to_dict`; files without one are version 1
#: (crsml before the record was typed), read by :meth:`ModelMetadata.from_dict` as they are
METADATA_VERSION = 2


@dataclass
class ModelMetadata(MutableMapping):
    """How a model was made (aggregates only).

    Attributes
    ----------
    grace_h : benefit models: "now" means a dose in [L, L + grace_h).
    horizon_h : the task's outcome window after the landmark.
    counts : patients used and left out (by reason).
    grades : ``recorded`` (the cohort's crs table) or ``derived`` (graded by crsml from the vitals).
    window : benefit models: the emulated decision window.
    data_digest : SHA-256 of the training features and labels.
    cv : risk models: folds, repeats, inner folds, trials, bootstrap resamples, seed.
    baselines_skipped : published baselines that could not be computed, with why.
    chosen, ate, ate_severe, propensity_auroc : benefit models: the estimator chosen, the average
        benefit (days and severe CRS, with intervals) and the propensity model's AUROC.
    feature_medians : each feature's training median (checks of a new cohort's case mix).
    versions : library versions the figures depend on.
    shap_mean_abs : mean absolute SHAP value per feature, largest first (top 30).
    baseline_fits : the refitted baselines, as JSON (external validation predicts with them).
    development : the development cohort's case-mix summary.
    sample_size : Riley's minimum sample size and what the cohort had.
    instability : prediction instability over bootstrap refits (binned summary).
    iecv : internal-external cross-validation by a patients column (per group and pooled).
    weak : why the model should not be used (empty when nothing says so).
    lineage : the updates applied to the model, oldest first.
    learner : risk models: the learner setting (tuned, fixed or auto), which was chosen and why.
    landmarks : a landmark supermodel's grid (hours after infusion); absent for a model of one landmark.
    by_landmark : a supermodel's out-of-fold figures at each landmark of its grid, per model.
    extra : keys of a newer or older file this version does not know (kept, written back).
    """

    grace_h: float | None = None
    horizon_h: float | None = None
    counts: dict[str, Any] | None = None
    grades: str | None = None
    window: Any = None
    data_digest: str | None = None
    cv: dict[str, Any] | None = None
    baselines_skipped: dict[str, str] | None = None
    chosen: str | None = None
    ate: dict[str, Any] | None = None
    ate_severe: dict[str, Any] | None = None
    propensity_auroc: float | None = None
    feature_medians: dict[str, float] | None = None
    versions: dict[str, str] | None = None
    shap_mean_abs: dict[str, float] | None = None
    baseline_fits: dict[str, Any] | None = None
    development: dict[str, Any] | None = None
    sample_size: dict[str, Any] | None = None
    instability: dict[str, Any] | None = None
    iecv: dict[str, Any] | None = None
    weak: list[str] | None = None
    lineage: list[dict[str, Any]] | None = None
    learner: dict[str, Any] | None = None
    landmarks: list[float] | None = None
    by_landmark: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- the record as the dictionary it replaced ---------------------------------------------
    def _known(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "extra"]

    def __getitem__(self, key: str) -> Any:
        if key in self._known():
            value = getattr(self, key)
            if value is None:
                raise KeyError(key)
            return value
        return self.extra[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._known():
            setattr(self, key, value)
        else:
            self.extra[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self._known():
            if getattr(self, key) is None:
                raise KeyError(key)
            setattr(self, key, None)
        else:
            del self.extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from (k for k in self._known() if getattr(self, k) is not None)
        yield from self.extra

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fields recorded, in declaration order, then ``extra``, then the version."""
        return {**{k: self[k] for k in self}, "metadata_version": METADATA_VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Read a record written by any crsml version (``metadata_version`` 1 or 2): known keys
        become fields, others are kept in ``extra``."""
        data = dict(data)
        version = int(data.pop("metadata_version", 1))
        if version > METADATA_VERSION:
            from crsml.errors import CrsmlError

            raise CrsmlError(
                f"model metadata version {version} is newer than this crsml reads ({METADATA_VERSION}); upgrade crsml"
            )
        out = cls()
        for k, v in data.items():
            out[k] = v
        return out
