"""Tracking and export: MLflow set-up (local SQLite store by default), one run per training
for every task, and models exported as MLflow pyfuncs or loaded from a directory or the registry."""

# loaded on first use (lazy_loader): ``quiet``, which every command calls, does not import MLflow,
# XGBoost and scikit-learn (17.7 s of a 57 s ``crsml features`` on a busy machine; issue #36)
import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
