"""The predictor: serves ``models:/<name>@champion`` from MLflow over v1, v2 and gRPC, batching concurrent
requests into shared model calls, and moves to a new version when the alias moves (polled, or on
``POST /v2/repository/models/<name>/load``) without failing a request: the old model serves until the
new one is loaded and warmed up, then one reference swap switches over.
"""

import asyncio
import itertools
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from kserve import Model
from kserve.errors import InvalidInput
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest, InferResponse
from kserve.utils.utils import generate_uuid

from core.labels import LABELS
from core.registry import VersionNotFound, is_registry_uri, resolve
from models.bundle import VersionDetails, is_bundle
from models.runtime_choice import choose_runtime, has_int8_runtime, load_in_runtime
from monitoring.drift import DriftReference
from serving import prometheus_metrics as metrics
from serving.answer_ids import AnswerSigner, load_key
from serving.batcher import AdaptiveBatcher
from serving.drift_window import DriftWindow
from serving.explain import ExplainLimits, explain, explanation_texts
from serving.feedback import Answer, RecentAnswers, join_feedback
from serving.payload import (
    Predictions,
    RequestLimits,
    texts_from_v1,
    texts_from_v2,
    v1_response,
    v2_response,
)
from serving.prediction_log import FLUSH_ROWS, FLUSH_SECONDS, QUEUE_SIZE, PredictionLog, feedback_log

logger = logging.getLogger(__name__)


class ChampionNotFound(RuntimeError):
    """The model URI names a registry alias that does not resolve (e.g. no pipeline run promoted one)."""


def pin_version(model_uri: str) -> tuple[str, str]:
    """Resolve ``models:/<name>@<alias>`` to (``models:/<name>/<version>``, version), so the loaded
    model and the reported version cannot disagree; a serving bundle folder reports the version it
    holds. Other URIs are returned as they are."""
    if is_bundle(model_uri):
        return model_uri, VersionDetails.from_bundle(Path(model_uri)).version
    if is_registry_uri(model_uri):
        try:
            version = resolve(model_uri)
        except VersionNotFound as exc:
            raise ChampionNotFound(
                f"{exc}. Run the pipeline first (make pipeline-run) so that the gate promotes a model."
            ) from exc
        return f"models:/{version.name}/{version.version}", str(version.version)
    return model_uri, "unversioned"


def version_details(pinned_uri: str) -> VersionDetails | None:
    """What is known of the version behind ``pinned_uri``: a bundle's ``serving.json``, or the registry's
    record of ``models:/<name>/<version>``; None for other URIs."""
    if is_bundle(pinned_uri):
        return VersionDetails.from_bundle(Path(pinned_uri))
    if pinned_uri.startswith("models:/"):
        name, version = pinned_uri.removeprefix("models:/").rsplit("/", 1)
        return VersionDetails.from_registry(name, version)
    return None


def drift_reference(details: VersionDetails | None) -> DriftReference | None:
    """The version's drift reference; None (drift gauges off, with a warning) when it has none."""
    if details is None or details.drift_reference is None:
        logger.warning("the served model has no drift reference: drift gauges are off")
        return None
    return DriftReference.from_json(details.drift_reference)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pyfunc model and what it is: registry version, family (linear, transformer, ensemble) and
    runtime (fp32, int8)."""

    model: mlflow.pyfunc.PyFuncModel
    version: str
    family: str
    runtime: str
    load_seconds: float


def download_model(pinned_uri: str, folder: Path) -> str:
    """A local folder holding the model at ``pinned_uri``: a local folder (a bundle) as it is, else the
    model downloaded into ``folder`` (the folders MLflow downloads to by itself are never removed)."""
    if Path(pinned_uri).is_dir():
        return pinned_uri
    return mlflow.artifacts.download_artifacts(pinned_uri, dst_path=str(folder))


def load_model(pinned_uri: str, version: str, runtime: str = "fp32") -> LoadedModel:
    """Load (in ``runtime``) and warm up, with one prediction, ``pinned_uri``."""
    started = time.perf_counter()
    model = load_in_runtime(pinned_uri, runtime)
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
    load_attempts: int = 0  # 0: until it loads (the server answers 503, not ready, meanwhile)
    load_backoff_seconds: float = 2.0
    load_backoff_max_seconds: float = 60.0
    runtime: str = "auto"
    drift_window: int = 1000
    drift_min_texts: int = 200
    prediction_log: str = ""
    prediction_log_sample: float = 0.1
    prediction_log_flush_rows: int = FLUSH_ROWS
    prediction_log_flush_seconds: float = FLUSH_SECONDS
    prediction_log_queue: int = QUEUE_SIZE
    remembered_answers: int = 100_000
    answer_key_file: str = ""  # the key that signs answer ids (serving/answer_ids.py load_key)
    explain: ExplainLimits = field(default_factory=ExplainLimits)


class SentimentPredictor(Model):
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
        metrics.watch_drift(self.drift)
        writing = {
            "flush_rows": options.prediction_log_flush_rows,
            "flush_seconds": options.prediction_log_flush_seconds,
            "queue_size": options.prediction_log_queue,
        }
        self.prediction_log = (
            PredictionLog(options.prediction_log, options.prediction_log_sample, **writing)
            if options.prediction_log
            else None
        )
        self.feedback_log = (
            feedback_log(options.prediction_log, **writing) if options.prediction_log else None
        )
        self._explaining = asyncio.Semaphore(1)  # one explanation at a time, beside (not in) the batches
        self.answers = RecentAnswers(options.remembered_answers)
        key, source = load_key(options.answer_key_file or None)
        self.signer = AnswerSigner(key)
        logger.info("answer ids are signed with the key from %s", source)
        self._reload_lock = threading.Lock()
        self._stopped = threading.Event()
        # Each loaded version's download, removed once another version serves: a predictor that follows
        # its alias for weeks keeps one model on its disk, not one per reload.
        self._downloads = Path(tempfile.mkdtemp(prefix="sentiment-models-"))

    @property
    def model_version(self) -> str:
        return self.served.version if self.served else ""

    def start(self) -> None:
        """kserve calls this as the server starts, and its default marks the model ready: here only a
        successful ``load`` does, which may come later (the server answers 503 until then)."""

    def load(self) -> bool:
        """Load the model, retrying with exponential backoff (capped at ``load_backoff_max_seconds``), at
        most ``load_attempts`` times (0: until it loads); ChampionNotFound is not retried."""
        delay = self.options.load_backoff_seconds
        for attempt in itertools.count(1):
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
                    "loading %s failed (attempt %d of %s: %s); retrying in %.0f s",
                    self.model_uri,
                    attempt,
                    self.options.load_attempts or "unlimited",
                    exc,
                    delay,
                )
                if self._stopped.wait(delay):
                    return False
                delay = min(delay * 2, self.options.load_backoff_max_seconds)
        self.ready = True
        if self.options.reload_seconds > 0:
            threading.Thread(target=self._watch_alias, name="alias-watcher", daemon=True).start()
        return self.ready

    def _swap_to(self, pinned_uri: str, version: str) -> None:
        logger.info("loading %s (%s)", pinned_uri, self.model_uri)
        details = version_details(pinned_uri)
        folder = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=self._downloads))
        try:
            local = download_model(pinned_uri, folder)
            runtime, why = choose_runtime(details, self.options.runtime, has_int8_runtime(local))
            (
                logger.warning
                if runtime == "int8" and not (details and details.int8_accepted)
                else logger.info
            )("version %s runs in %s: %s", version, runtime, why)
            loaded = load_model(local, version, runtime)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        scores = details.offline_scores if details else {}
        self.served = loaded  # one reference assignment: each batch uses one model, old or new
        for earlier in self._downloads.iterdir():  # its model objects stay in memory for batches in flight
            if earlier != folder:
                shutil.rmtree(earlier, ignore_errors=True)
        self.drift.use_reference(drift_reference(details))
        metrics.MODEL_LOADS.labels(outcome="success").inc()
        metrics.record_model(
            self.name, loaded.version, loaded.family, loaded.runtime, loaded.load_seconds, scores
        )
        metrics.initialise(loaded.version)
        logger.info(
            "serving %s version %s (%s, %s), loaded in %.1f s",
            self.name,
            loaded.version,
            loaded.family,
            loaded.runtime,
            loaded.load_seconds,
        )

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
        for log in (self.prediction_log, self.feedback_log):
            if log:
                log.close()
        shutil.rmtree(self._downloads, ignore_errors=True)
        super().stop()

    def get_input_types(self) -> list[dict]:
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "id", "datatype": "BYTES", "shape": [-1]},
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
        request_id = (payload.id or generate_uuid()) if is_v2 else None
        confidences = answer.probabilities.max(axis=1).tolist()
        metrics.record_predictions(texts, answer.labels, confidences, answer.version)
        self.drift.add(texts, answer.labels, confidences)
        now = time.time()
        ids = [
            self.signer.issue(text, label, confidence, answer.version, now)
            for text, label, confidence in zip(texts, answer.labels, confidences, strict=True)
        ]
        self.answers.add(
            [
                Answer(i, text, label, confidence, answer.version, now)
                for i, text, label, confidence in zip(ids, texts, answer.labels, confidences, strict=True)
            ]
        )
        if self.prediction_log:
            self.prediction_log.record(texts, answer.labels, confidences, answer.version, ids)
        if is_v2:
            return v2_response(answer, self.name, request_id, ids, raw_outputs=payload.from_grpc)
        return v1_response(answer, ids)

    def feedback(self, payload: object) -> dict:
        """Join the labels in ``payload`` (serving/feedback.py) to their answers, row by row: each joined
        row counts in its version's live confusion matrix (sentiment_live_labels_total, summed across
        replicas by the recording rules) and goes to the feedback log (never waited for); the
        answer lists the refused rows with why. InvalidInput (400), nothing kept, for a bad body, when
        every row is refused, or when any is and the body asked ``"atomic": true``."""
        try:
            labelled, refused = join_feedback(
                payload, self.signer, self.answers, self.options.limits.max_instances
            )
        except InvalidInput:
            metrics.FEEDBACK_ROWS.labels(outcome="refused").inc(
                len(payload) if isinstance(payload, list) else 1
            )
            raise
        atomic = isinstance(payload, dict) and payload.get("atomic") is True
        if refused and (atomic or not labelled):
            metrics.FEEDBACK_ROWS.labels(outcome="refused").inc(len(refused) + len(labelled))
            reasons = "; ".join(f"[{r['row']}] {r['reason']}" for r in refused[:10])
            raise InvalidInput(f"feedback refused, nothing stored: {reasons}")
        for row in labelled:
            metrics.record_label(row.answer.model_version, row.label, row.answer.predicted)
            if self.feedback_log:
                self.feedback_log.enqueue(row.as_record())
        metrics.FEEDBACK_ROWS.labels(outcome="accepted").inc(len(labelled))
        metrics.FEEDBACK_ROWS.labels(outcome="refused").inc(len(refused))
        return {
            "accepted": len(labelled),
            "refused": refused,
            "feedback_log": self.options.prediction_log or None,
        }

    async def explain(self, payload: dict, headers: dict[str, str] | None = None) -> dict:
        """KServe's v1 ``:explain``: per-word occlusion attributions (serving/explain.py). Off the batching
        path: the model is called from a worker thread, one explanation at a time, so ``:predict``'s
        batches never wait behind an explanation's many texts."""
        started, code = time.perf_counter(), "500"
        try:
            texts = explanation_texts(payload, self.options.explain, self.options.limits.max_text_chars)
            async with self._explaining:
                answer = await asyncio.to_thread(explain, texts, self.predict_texts)
            code = "200"
            return answer
        except InvalidInput:
            code = "400"
            raise
        finally:
            metrics.EXPLANATIONS.labels(model_version=self.model_version, code=code).inc()
            metrics.EXPLAIN_DURATION.labels(model_version=self.model_version).observe(
                time.perf_counter() - started
            )

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
    Protocol's repository extension) makes a served SentimentPredictor move to the alias's current version."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if not isinstance(model, SentimentPredictor):
            raise InvalidInput(f"model {name!r} is not served here")
        await asyncio.to_thread(model.reload)
        return model.ready
