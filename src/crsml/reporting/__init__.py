"""The model card: a self-contained HTML page describing a model from its metadata (counts,
out-of-fold evaluation, curves, SHAP, limitations), and a headless-Chromium screenshot of it."""

from crsml.reporting._model_card import screenshot, write_model_card

__all__ = ["screenshot", "write_model_card"]
