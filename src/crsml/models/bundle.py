"""Compatibility for models exported before the redesign: their stored MLflow code
(``pyfunc_model.py``) calls ``crsml.models.bundle.load_bundle``. New code uses
:meth:`crsml.models.Model.load` (or :func:`crsml.load_model`)."""

from __future__ import annotations

from pathlib import Path

from crsml.models._model import Model

__all__ = ["load_bundle"]


def load_bundle(path: str | Path) -> Model:
    """A saved model, as the old MLflow code of an exported model asks for it."""
    return Model.load(path)
