"""The predictor: loads ``models:/<name>@champion`` from MLflow and answers v1 and v2 requests."""

import asyncio
import logging

import mlflow
import pandas as pd
from kserve import Model
from kserve.protocol.infer_type import InferRequest, InferResponse
from mlflow.exceptions import MlflowException

from serving.payload import texts_from_v1, texts_from_v2, v1_response, v2_response

logger = logging.getLogger(__name__)


class ChampionNotFound(RuntimeError):
    """The model URI names a registry alias that does not resolve (e.g. no pipeline run promoted one)."""


def pin_version(model_uri: str) -> tuple[str, str]:
    """Resolve ``models:/<name>@<alias>`` to (``models:/<name>/<version>``, version), so the loaded
    model and the reported version cannot disagree. Other URIs are returned as they are."""
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri.removeprefix("models:/").split("@", 1)
        try:
            version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
        except MlflowException as exc:
            raise ChampionNotFound(
                f"cannot resolve {model_uri} in the registry at {mlflow.get_tracking_uri()}: {exc.message}. "
                "Run the pipeline first (make pipeline-run) so that the gate promotes a model."
            ) from exc
        return f"models:/{name}/{version}", str(version)
    return model_uri, "unversioned"


class SentimentModel(Model):
    """A kserve.Model over the MLflow pyfunc sentiment model; ``ready`` once ``load`` succeeds."""

    def __init__(self, name: str, model_uri: str):
        super().__init__(name)
        self.model_uri = model_uri
        self.model_version = ""
        self._model = None

    def load(self) -> bool:
        pinned_uri, self.model_version = pin_version(self.model_uri)
        logger.info("loading %s (%s)", pinned_uri, self.model_uri)
        self._model = mlflow.pyfunc.load_model(pinned_uri)
        self.ready = True
        return self.ready

    def predict_texts(self, texts: list[str]) -> pd.DataFrame:
        """Label and class probabilities for each text, in one model call."""
        return self._model.predict(pd.DataFrame({"text": texts}))

    async def predict(
        self,
        payload: dict | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        if isinstance(payload, InferRequest):
            predictions = await asyncio.to_thread(self.predict_texts, texts_from_v2(payload))
            return v2_response(payload, predictions, self.name, self.model_version)
        predictions = await asyncio.to_thread(self.predict_texts, texts_from_v1(payload))
        return v1_response(predictions, self.model_version)
