"""MLflow "models from code" definition of a crsml model: MLflow stores this file, not a
pickled object. ``load_context`` reads the bundle's JSON and XGBoost files; ``predict`` takes a
feature frame (the model's feature columns; missing values allowed) and returns the model's
prediction columns (``risk``; a benefit model adds ``benefit`` ...)."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class CrsmlRiskModel(PythonModel):
    def load_context(self, context):
        from crsml.models import Model

        self.model = Model.load(context.artifacts["crsml"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        X = pd.DataFrame(model_input)
        X = X.reindex(columns=self.model.feature_names).apply(pd.to_numeric, errors="coerce")
        return self.model.predict_features(X.astype(float)).reset_index(drop=True)


mlflow.models.set_model(CrsmlRiskModel())
