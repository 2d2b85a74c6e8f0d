"""MLflow model-from-code entry: the pyfunc loads plain files (npz, parquet, json) through recsys' predictors.

Logged with `mlflow.pyfunc.log_model(python_model=<this file>, artifacts={"model": <saved model folder>})`.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class RecsysPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from recsys.serving.predictor import load_predictor

        self.predictor = load_predictor(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.predictor.predict(model_input, params)


mlflow.models.set_model(RecsysPyfunc())
