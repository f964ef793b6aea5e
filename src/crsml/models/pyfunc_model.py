"""MLflow "models from code" definition of a crsml model: MLflow stores this file, not a
pickled object. ``load_context`` reads the bundle's JSON and XGBoost files; ``predict`` takes a
feature frame (the model's feature columns; missing values allowed) and returns ``risk``."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class CrsmlRiskModel(PythonModel):
    def load_context(self, context):
        from crsml.models.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["crsml"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        X = pd.DataFrame(model_input)
        X = X.reindex(columns=self.bundle.feature_names).apply(pd.to_numeric, errors="coerce")
        return self.bundle.predict_features(X.astype(float)).reset_index(drop=True)


mlflow.models.set_model(CrsmlRiskModel())
