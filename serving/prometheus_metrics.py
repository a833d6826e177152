"""The predictor's Prometheus metrics, on prometheus_client's default registry: the kserve server exposes
them on ``/metrics`` next to its own ``request_*_seconds`` histograms. Base units (seconds), ``_total``
counters, units in the names.
"""

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.labels import LABELS
from serving.batcher import BatchStats
from serving.drift_window import DriftWindow

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "sentiment_requests_total",
    "Inference requests by protocol (v1, v2, grpc), serving model version and status code.",
    ["protocol", "model_version", "code"],
)
REQUEST_DURATION = Histogram(
    "sentiment_request_duration_seconds",
    "End-to-end inference request latency in the server, by protocol and serving model version.",
    ["protocol", "model_version"],
    buckets=LATENCY_BUCKETS,
)
EXPLANATIONS = Counter(
    "sentiment_explanations_total",
    "Explain (:explain) requests by serving model version and status code.",
    ["model_version", "code"],
)
EXPLAIN_DURATION = Histogram(
    "sentiment_explain_duration_seconds",
    "Explain (:explain) request latency in the server, by serving model version.",
    ["model_version"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "sentiment_batch_queue_wait_seconds",
    "Time a request waited for its batch's model call to start.",
    buckets=LATENCY_BUCKETS,
)
MODEL_COMPUTE = Histogram(
    "sentiment_model_compute_seconds", "Duration of one batched model call.", buckets=LATENCY_BUCKETS
)
BATCH_SIZE = Histogram(
    "sentiment_batch_size_texts",
    "Texts per batched model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
PREDICTIONS = Counter(
    "sentiment_predictions_total", "Predicted labels, by class and model version.", ["label", "model_version"]
)
CONFIDENCE = Histogram(
    "sentiment_prediction_confidence_ratio",
    "Probability of the predicted class, by model version.",
    ["model_version"],
    buckets=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
INPUT_LENGTH = Histogram(
    "sentiment_input_length_characters",
    "Length of each input text, in characters.",
    buckets=(8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
MODEL_INFO = Gauge(
    "sentiment_model_info", "The model being served (value 1).", ["name", "version", "flavour", "runtime"]
)
OFFLINE_SCORE = Gauge(
    "sentiment_model_offline_score",
    "The served version's scores from the pipeline (evaluate on the test split and out-of-domain sets).",
    ["metric"],
)
PREDICTION_LOG_RECORDS = Counter(
    "sentiment_prediction_log_records_total",
    "Sampled predictions for the monitor step, by outcome (written, dropped when the log falls behind).",
    ["outcome"],
)
FEEDBACK_LOG_RECORDS = Counter(
    "sentiment_feedback_log_records_total",
    "Labelled answers for the feedback log, by outcome (written, dropped when the log falls behind).",
    ["outcome"],
)
FEEDBACK_ROWS = Counter(
    "sentiment_feedback_rows_total",
    "Feedback rows (live labels) by outcome: accepted, or refused with their request (4xx).",
    ["outcome"],
)
LIVE_LABELS = Counter(
    "sentiment_live_labels_total",
    "Labelled answers (accepted feedback rows) by the answering model version, the true label and the "
    "predicted one: this replica's part of the live confusion matrix. The recording rules "
    "(monitoring/alerts.rules.yml) sum every replica's into live macro recall and accuracy with 95 % "
    "intervals.",
    ["model_version", "label", "predicted"],
)
MODEL_LOAD_SECONDS = Gauge("sentiment_model_load_duration_seconds", "Duration of the last model load.")
MODEL_LOADS = Counter(
    "sentiment_model_loads_total", "Model load attempts (first load and reloads), by outcome.", ["outcome"]
)


class DriftCollector(Collector):
    """``sentiment_drift_psi{feature}`` and the window's fill, computed from a DriftWindow at scrape time
    (no series until the window holds enough answers and the model has a reference)."""

    def __init__(self) -> None:
        self.window: DriftWindow | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        psi = GaugeMetricFamily(
            "sentiment_drift_psi",
            "Population stability index of the last answered texts against the model's reference, by "
            "feature (input_length, confidence, predicted_class); above 0.25 is a significant shift.",
            labels=["feature"],
        )
        scores = self.window.scores() if self.window else None
        for feature, value in (scores or {}).items():
            psi.add_metric([feature], value)
        yield psi
        yield GaugeMetricFamily(
            "sentiment_drift_window_texts",
            "Answered texts in the drift window.",
            value=len(self.window) if self.window else 0,
        )


_DRIFT = DriftCollector()


def watch_drift(window: DriftWindow) -> None:
    """Report ``window`` as ``sentiment_drift_*`` from now on; the first call registers the collector."""
    if _DRIFT.window is None:
        REGISTRY.register(_DRIFT)
    _DRIFT.window = window


def record_batch(stats: BatchStats) -> None:
    """Observe one batched model call."""
    BATCH_SIZE.observe(stats.texts)
    MODEL_COMPUTE.observe(stats.compute_seconds)
    for wait in stats.queue_waits:
        QUEUE_WAIT.observe(wait)


def record_predictions(texts: list[str], labels: list[str], confidences: list[float], version: str) -> None:
    """Observe each answered text: its length, predicted class and that class's probability."""
    for text, label, confidence in zip(texts, labels, confidences, strict=True):
        INPUT_LENGTH.observe(len(text))
        PREDICTIONS.labels(label=label, model_version=version).inc()
        CONFIDENCE.labels(model_version=version).observe(confidence)


def record_label(version: str, label: str, predicted: str) -> None:
    """Count one labelled answer of ``version`` in the live confusion matrix."""
    LIVE_LABELS.labels(model_version=version, label=label, predicted=predicted).inc()


def record_model(
    name: str, version: str, flavour: str, runtime: str, load_seconds: float, offline: dict[str, float]
) -> None:
    """Point the info gauge at the model now served, record how long it took to load and its offline
    scores."""
    MODEL_INFO.clear()
    MODEL_INFO.labels(name=name, version=version, flavour=flavour, runtime=runtime).set(1)
    MODEL_LOAD_SECONDS.set(load_seconds)
    OFFLINE_SCORE.clear()
    for metric, value in offline.items():
        OFFLINE_SCORE.labels(metric=metric).set(value)


def initialise(version: str) -> None:
    """Create the labelled series at 0, so dashboards, rate() and increase() see them before the first
    request (a counter that appears at 3 loses those 3 to increase()): answers and server failures per
    protocol, latency, confidence, the predicted classes and the live confusion matrix of ``version``."""
    for protocol, codes in (("v1", ("200", "500")), ("v2", ("200", "500")), ("grpc", ("OK", "INTERNAL"))):
        REQUEST_DURATION.labels(protocol=protocol, model_version=version)
        for code in codes:
            REQUESTS.labels(protocol=protocol, model_version=version, code=code)
    CONFIDENCE.labels(model_version=version)
    for outcome in ("accepted", "refused"):
        FEEDBACK_ROWS.labels(outcome=outcome)
    for label in LABELS:
        PREDICTIONS.labels(label=label, model_version=version)
        for predicted in LABELS:
            LIVE_LABELS.labels(model_version=version, label=label, predicted=predicted)
