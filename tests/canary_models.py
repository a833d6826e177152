"""Test-only models for the canary-analysis and batch-scoring proofs: MLflow pyfunc models that wrap a
registered version and misbehave in one known way. They are faults a test injects, not product features;
the predictor and the batch steps load them like any registered model (cloudpickle imports this module
from the repo root)."""

import os
import zlib

import mlflow
import pandas as pd


class _Wrapping(mlflow.pyfunc.PythonModel):
    family = "test-canary"

    def load_context(self, context) -> None:
        self.base = mlflow.pyfunc.load_model(context.artifacts["base"])


class NeutralAsPositive(_Wrapping):
    """Answers like the base model, but calls every neutral text positive: a shifted class mix."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        answer = self.base.predict(model_input).copy()
        neutral = answer["label"] == "neutral"
        answer.loc[neutral, ["prob_neutral", "prob_positive"]] = answer.loc[
            neutral, ["prob_positive", "prob_neutral"]
        ].to_numpy()
        answer.loc[neutral, "label"] = "positive"
        return answer


class SwapsPolarity(_Wrapping):
    """Answers like the base model with negative and positive swapped (labels and probabilities): on
    balanced traffic the class mix and the confidence stay as they were; only labels show it is wrong."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        answer = self.base.predict(model_input).copy()
        answer[["prob_negative", "prob_positive"]] = answer[["prob_positive", "prob_negative"]].to_numpy()
        answer["label"] = answer["label"].replace({"negative": "positive", "positive": "negative"})
        return answer


class FailsOneInFour(_Wrapping):
    """Fails (the server answers 500) on a fixed quarter of texts, by their CRC-32."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if any(zlib.crc32(text.encode()) % 4 == 0 for text in model_input["text"]):
            raise RuntimeError("injected canary fault")
        return self.base.predict(model_input)


FAULT_MARKER_ENV = "TEST_FAULT_MARKER"


class FailsFirstCall(_Wrapping):
    """Fails the first prediction of all the processes that load it, then answers like the base model: a
    transient fault. The first to create the file ``$TEST_FAULT_MARKER`` is the one that fails."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            os.close(os.open(os.environ[FAULT_MARKER_ENV], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.base.predict(model_input)
        raise RuntimeError("injected transient fault")


def register(model: _Wrapping, base_uri: str, name: str) -> str:
    """Log ``model`` wrapping ``base_uri`` and register it as a new version of ``name``; return it."""
    with mlflow.start_run(run_name=f"test-canary-{type(model).__name__}"):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, artifacts={"base": base_uri}, pip_requirements=["mlflow"]
        )
    return str(mlflow.register_model(info.model_uri, name).version)
