"""The ensemble family's served model: a soft vote that averages its member models' class probabilities
with fixed weights. It carries its members; its ``runtime`` config (``fp32`` or ``int8``) passes on to
the members that have one (the transformer)."""

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import Model

from core.labels import LABELS, probability_columns
from models.output import probabilities_frame
from models.packaging import log_sentiment_model

REQUIREMENTS = ("transformers", "onnxruntime", "scipy", "sentence-transformers", "scikit-learn", "joblib")


def load_member(path: str, runtime: str) -> mlflow.pyfunc.PyFuncModel:
    """Load a member model, in ``runtime`` when its config has that setting."""
    config = Model.load(path).flavors["python_function"].get("config") or {}
    return mlflow.pyfunc.load_model(path, model_config={"runtime": runtime} if "runtime" in config else None)


class SoftVotingSentimentModel(mlflow.pyfunc.PythonModel):
    """Averages its members' probability columns with ``weights``; answers like every other model."""

    family = "ensemble"

    def __init__(self, weights: list[float] | None = None):
        self.weights = weights

    def load_context(self, context) -> None:
        runtime = (context.model_config or {}).get("runtime", "fp32")
        names = sorted(name for name in context.artifacts if name.startswith("member_"))
        self.members = [load_member(context.artifacts[name], runtime) for name in names]

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        frames = [member.predict(model_input)[probability_columns()].to_numpy() for member in self.members]
        return probabilities_frame(list(LABELS), np.average(frames, axis=0, weights=self.weights))


def log_ensemble_model(member_paths: list[str], weights: list[float] | None) -> str:
    """Log the soft vote of the local model folders ``member_paths`` (``weights``: None averages them alike)
    in the active run; return its URI."""
    members = {f"member_{n}": path for n, path in enumerate(member_paths)}
    model = SoftVotingSentimentModel(weights)
    return log_sentiment_model(model, members, {"runtime": "fp32"}, REQUIREMENTS)
