"""crsml: landmark prediction of CRS severity, duration and tocilizumab benefit after CD19 CAR-T.

From a cohort directory to a fitted model, predictions and SHAP values::

    import crsml
    cohort = crsml.read_cohort("out/demo/sim")
    X, y = crsml.tasks.get("severe_crs").dataset(cohort, landmark_h=48)
    model = crsml.XGBRiskClassifier(n_trials=10).fit(X, y)
    risk = model.predict_proba(X)[:, 1]
    shap_values = crsml.explain(model, X)

and a whole training run (nested cross-validation, baselines), then tracking and export as
separate steps::

    result = crsml.train(cohort, "severe_crs", landmark_h=48, trials=20)
    result.summary()
    crsml.log_training(result)                     # MLflow run + registered version
    crsml.export_model(result.model, "models/severe48")
    scores = crsml.score(crsml.load_model("models/severe48"), new_cohort)

Subpackages, in the order data flows: :mod:`crsml.cohort`, :mod:`crsml.adapters`,
:mod:`crsml.simulation`, :mod:`crsml.features`, :mod:`crsml.tasks`, :mod:`crsml.models`,
:mod:`crsml.evaluation` (metrics, curves, baselines), :mod:`crsml.explanation` (SHAP),
:mod:`crsml.training` (``train``), :mod:`crsml.validation` (``evaluate`` and ``update`` on a new
centre's patients), :mod:`crsml.scoring`, :mod:`crsml.reporting`, :mod:`crsml.tracking`,
:mod:`crsml.cli`.
"""

# Names are loaded on first use (SPEC 1, lazy_loader): ``crsml validate`` starts without importing
# scikit-learn, XGBoost or MLflow. The names and where they come from are in ``__init__.pyi``.
import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
