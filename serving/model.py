"""The predictor: serves ``models:/<name>@champion`` from MLflow over v1, v2 and gRPC, batching concurrent
requests into shared model calls, and moves to a new version when the alias moves (polled, or on
``POST /v2/repository/models/<name>/load``) without failing a request: the old model serves until the
new one is loaded and warmed up, then one reference swap switches over.
"""

import asyncio
import logging
import re
import threading
import time
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from kserve import Model
from kserve.errors import InvalidInput
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest, InferResponse
from mlflow.exceptions import MlflowException

from components.labels import LABELS
from serving import metrics
from serving.batcher import AdaptiveBatcher
from serving.drift import DriftWindow, load_reference
from serving.payload import (
    Predictions,
    RequestLimits,
    texts_from_v1,
    texts_from_v2,
    v1_response,
    v2_response,
)
from serving.prediction_log import PredictionLog

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
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST" and "not found" not in exc.message.lower():
                raise
            raise ChampionNotFound(
                f"cannot resolve {model_uri} in the registry at {mlflow.get_tracking_uri()}: {exc.message}. "
                "Run the pipeline first (make pipeline-run) so that the gate promotes a model."
            ) from exc
        return f"models:/{name}/{version}", str(version)
    return model_uri, "unversioned"


def registered_version(pinned_uri: str):
    """The registry's ModelVersion behind ``models:/<name>/<version>``; None for other URIs."""
    if not pinned_uri.startswith("models:/"):
        return None
    name, version = pinned_uri.removeprefix("models:/").rsplit("/", 1)
    return mlflow.MlflowClient().get_model_version(name, version)


def choose_runtime(pinned_uri: str, requested: str) -> str:
    """``int8`` when it is requested and, for a registered version, the gate accepted it (version tag
    ``int8_accepted``); else ``fp32``, with a log line saying why."""
    registered = registered_version(pinned_uri) if requested != "fp32" else None
    if registered is None:
        return requested
    accepted = registered.tags.get("int8_accepted")
    if accepted == "true":
        return "int8"
    logger.warning(
        "%s: the gate did not accept an INT8 runtime (int8_accepted=%s); serving it in fp32",
        pinned_uri,
        accepted,
    )
    return "fp32"


# The pipeline's scores of a version that the predictor exports (sentiment_model_offline_score{metric}).
OFFLINE_METRICS = re.compile(r"test_(macro_recall|macro_f1|accuracy)|ood_.+_macro_recall|gate_score_.+")


def offline_scores(run_id: str | None) -> dict[str, float]:
    """The run's test, out-of-domain and gate scores (see OFFLINE_METRICS)."""
    if run_id is None:
        return {}
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    return {name: value for name, value in logged.items() if OFFLINE_METRICS.fullmatch(name)}


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pyfunc model and what it is: registry version, family (svm, transformer, ensemble) and
    runtime (fp32, int8)."""

    model: mlflow.pyfunc.PyFuncModel
    version: str
    family: str
    runtime: str
    load_seconds: float


def load_model(pinned_uri: str, version: str, runtime: str = "fp32") -> LoadedModel:
    """Load (in ``runtime`` if the gate accepted it) and warm up, with one prediction, ``pinned_uri``."""
    started = time.perf_counter()
    runtime = choose_runtime(pinned_uri, runtime)
    config = {"runtime": runtime} if runtime != "fp32" else None
    model = mlflow.pyfunc.load_model(pinned_uri, model_config=config)
    model.predict(pd.DataFrame({"text": ["warming up"]}))
    python_model = model.unwrap_python_model()
    family = getattr(python_model, "family", type(python_model).__name__)
    return LoadedModel(model, version, family, runtime, time.perf_counter() - started)


@dataclass(frozen=True)
class ServingOptions:
    """Batching, request limits, runtime, model lifecycle and monitoring settings (see
    ``python -m serving --help``)."""

    max_batch_size: int = 16
    max_wait_ms: float = 0.0
    limits: RequestLimits = field(default_factory=RequestLimits)
    reload_seconds: float = 0.0
    load_attempts: int = 5
    load_backoff_seconds: float = 2.0
    runtime: str = "fp32"
    drift_window: int = 1000
    drift_min_texts: int = 200
    prediction_log: str = ""
    prediction_log_sample: float = 0.1


class SentimentModel(Model):
    """A kserve.Model over the MLflow pyfunc sentiment model; ``ready`` once ``load`` succeeds."""

    def __init__(self, name: str, model_uri: str, options: ServingOptions = ServingOptions()):
        super().__init__(name)
        self.model_uri = model_uri
        self.options = options
        self.served: LoadedModel | None = None
        self.batcher = AdaptiveBatcher(
            self.predict_texts, options.max_batch_size, options.max_wait_ms, metrics.record_batch
        )
        self.drift = DriftWindow(options.drift_window, options.drift_min_texts)
        metrics.DRIFT.window = self.drift
        self.prediction_log = (
            PredictionLog(options.prediction_log, options.prediction_log_sample)
            if options.prediction_log
            else None
        )
        self._reload_lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def model_version(self) -> str:
        return self.served.version if self.served else ""

    def load(self) -> bool:
        """Load the model, retrying with exponential backoff; ChampionNotFound is not retried."""
        delay = self.options.load_backoff_seconds
        for attempt in range(1, self.options.load_attempts + 1):
            try:
                self._swap_to(*pin_version(self.model_uri))
                break
            except ChampionNotFound:
                metrics.MODEL_LOADS.labels(outcome="failure").inc()
                raise
            except Exception as exc:
                metrics.MODEL_LOADS.labels(outcome="failure").inc()
                if attempt == self.options.load_attempts:
                    raise
                logger.warning(
                    "loading %s failed (attempt %d of %d: %s); retrying in %.0f s",
                    self.model_uri, attempt, self.options.load_attempts, exc, delay,
                )  # fmt: skip
                time.sleep(delay)
                delay *= 2
        self.ready = True
        if self.options.reload_seconds > 0:
            threading.Thread(target=self._watch_alias, name="alias-watcher", daemon=True).start()
        return self.ready

    def _swap_to(self, pinned_uri: str, version: str) -> None:
        logger.info("loading %s (%s)", pinned_uri, self.model_uri)
        loaded = load_model(pinned_uri, version, self.options.runtime)
        registered = registered_version(pinned_uri)
        run_id = registered.run_id if registered else None
        reference, scores = load_reference(run_id), offline_scores(run_id)
        self.served = loaded  # one reference assignment: each batch uses one model, old or new
        self.drift.use_reference(reference)
        metrics.MODEL_LOADS.labels(outcome="success").inc()
        metrics.record_model(
            self.name, loaded.version, loaded.family, loaded.runtime, loaded.load_seconds, scores
        )
        metrics.initialise(loaded.version)
        logger.info(
            "serving %s version %s (%s, %s), loaded in %.1f s",
            self.name, loaded.version, loaded.family, loaded.runtime, loaded.load_seconds,
        )  # fmt: skip

    def reload(self) -> bool:
        """Serve the version the alias points at now, if it is another one; True when it switched.
        The current model keeps serving while the new one loads; a failed load changes nothing."""
        with self._reload_lock:
            pinned_uri, version = pin_version(self.model_uri)
            if self.served and version == self.served.version:
                return False
            try:
                self._swap_to(pinned_uri, version)
            except Exception:
                metrics.MODEL_LOADS.labels(outcome="failure").inc()
                raise
            return True

    def _watch_alias(self) -> None:
        while not self._stopped.wait(self.options.reload_seconds):
            try:
                self.reload()
            except Exception:
                logger.exception(
                    "reloading %s failed; still serving version %s", self.name, self.model_version
                )

    def stop(self) -> None:
        self._stopped.set()
        if self.prediction_log:
            self.prediction_log.close()
        super().stop()

    def get_input_types(self) -> list[dict]:
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]},
        ]

    def predict_texts(self, texts: list[str]) -> Predictions:
        """Label and class probabilities for each text in one model call, with the version that answered."""
        served = self.served
        return Predictions.from_frame(served.model.predict(pd.DataFrame({"text": texts})), served.version)

    async def predict(
        self,
        payload: dict | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        if isinstance(payload, InferRequest) and payload.from_grpc:
            return await self._count_grpc(payload)
        return await self._answer(payload)

    async def _answer(self, payload: dict | InferRequest) -> dict | InferResponse:
        limits = self.options.limits
        is_v2 = isinstance(payload, InferRequest)
        texts = texts_from_v2(payload, limits) if is_v2 else texts_from_v1(payload, limits)
        answer = await self.batcher.predict(texts)
        confidences = answer.probabilities.max(axis=1).tolist()
        metrics.record_predictions(texts, answer.labels, confidences, answer.version)
        self.drift.add(texts, answer.labels, confidences)
        if self.prediction_log:
            self.prediction_log.record(texts, answer.labels, confidences, answer.version)
        return v2_response(payload, answer, self.name) if is_v2 else v1_response(answer)

    async def _count_grpc(self, payload: InferRequest) -> InferResponse:
        """gRPC requests bypass the HTTP middleware: count and time them here."""
        started, code = time.perf_counter(), "INTERNAL"
        try:
            response = await self._answer(payload)
            code = "OK"
            return response
        except InvalidInput:
            code = "INVALID_ARGUMENT"
            raise
        finally:
            metrics.REQUESTS.labels(protocol="grpc", model_version=self.model_version, code=code).inc()
            metrics.REQUEST_DURATION.labels(protocol="grpc", model_version=self.model_version).observe(
                time.perf_counter() - started
            )


class ReloadingRepository(ModelRepository):
    """kserve's model repository, where ``POST /v2/repository/models/<name>/load`` (the Open Inference
    Protocol's repository extension) makes a served SentimentModel move to the alias's current version."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if not isinstance(model, SentimentModel):
            raise InvalidInput(f"model {name!r} is not served here")
        await asyncio.to_thread(model.reload)
        return model.ready
