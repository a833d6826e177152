"""Start the predictor: ``python -m serving --model_name sentiment --model_uri models:/sentiment@champion``
(from the registry), or on a cluster from the serving bundle KServe downloaded (``STORAGE_URI``).

Takes every kserve ModelServer flag (--http_port, --grpc_port, --workers, ...) plus the batching, limit
and reload flags below. Keep --workers=1: the Prometheus metrics on /metrics are per worker, and so is
the batcher; scale with replicas instead.
"""

import argparse
import logging
import os
import threading

import kserve
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from kserve import model_server
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from starlette.exceptions import HTTPException

from models.runtime_choice import RUNTIMES
from serving.auth import TOKEN_ENV, TokenGuard
from serving.explain import ExplainLimits
from serving.http_guard import InferenceGuard, http_error_handler, invalid_body_handler
from serving.payload import RequestLimits
from serving.predictor import (
    ChampionNotFound,
    ReloadingRepository,
    SentimentPredictor,
    ServingOptions,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: 256 texts of 4 KB with JSON overhead


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
    parser.add_argument(
        "--model_uri",
        default=os.environ.get("STORAGE_URI") or os.environ.get("MODEL_URI", "models:/sentiment@champion"),
        help="what to serve: a serving bundle folder (env STORAGE_URI: KServe's storage initializer "
        "downloads the bundle to /mnt/models and points STORAGE_URI there; no MLflow server needed) or an "
        "MLflow model URI such as models:/sentiment@champion (env MODEL_URI)",
    )
    parser.add_argument(
        "--tracking_uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking URI (env MLFLOW_TRACKING_URI)",
    )
    defaults, limits = ServingOptions(), RequestLimits()
    batching = parser.add_argument_group("batching")
    batching.add_argument(
        "--max_batch_size",
        type=int,
        default=defaults.max_batch_size,
        help="most texts in one batched model call",
    )
    batching.add_argument(
        "--max_batch_wait_ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long a request that finds the model idle waits for company",
    )
    guard = parser.add_argument_group("request limits (4xx beyond them)")
    guard.add_argument("--max_body_bytes", type=int, default=MAX_BODY_BYTES, help="REST body size (413)")
    guard.add_argument("--max_instances", type=int, default=limits.max_instances, help="texts per request")
    guard.add_argument(
        "--max_text_chars", type=int, default=limits.max_text_chars, help="characters per text"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=os.environ.get("MODEL_RUNTIME", ServingOptions.runtime),
        help="auto: INT8 (ONNX Runtime) where the gate accepted it for the version, else FP32; fp32; int8: "
        "INT8 wherever the model has one, even against the gate (env MODEL_RUNTIME)",
    )
    lifecycle = parser.add_argument_group("model lifecycle")
    lifecycle.add_argument(
        "--reload_interval_seconds",
        type=float,
        default=defaults.reload_seconds,
        help="poll the alias and move to its new version (0: only on the repository load call)",
    )
    lifecycle.add_argument(
        "--load_attempts",
        type=int,
        default=defaults.load_attempts,
        help="tries to load the model at start, with exponential backoff (see below); 0: until it loads "
        "(the server is live meanwhile and answers 503, not ready)",
    )
    lifecycle.add_argument(
        "--load_backoff_seconds",
        type=float,
        default=defaults.load_backoff_seconds,
        help="the first wait between load attempts; it doubles after each failure",
    )
    lifecycle.add_argument(
        "--load_backoff_max_seconds",
        type=float,
        default=defaults.load_backoff_max_seconds,
        help="the longest wait between load attempts",
    )
    monitoring = parser.add_argument_group("monitoring")
    monitoring.add_argument(
        "--drift_window",
        type=int,
        default=defaults.drift_window,
        help="answered texts in the sliding window the drift gauges compare with the training reference",
    )
    monitoring.add_argument(
        "--drift_min_texts",
        type=int,
        default=defaults.drift_min_texts,
        help="no drift score until the window holds this many texts",
    )
    monitoring.add_argument(
        "--prediction_log",
        default=os.environ.get("PREDICTION_LOG", defaults.prediction_log),
        help="folder or s3:// prefix for sampled predictions, read by the monitor step (env PREDICTION_LOG)",
    )
    monitoring.add_argument(
        "--prediction_log_sample",
        type=float,
        default=defaults.prediction_log_sample,
        help="share of answered texts to log (the feedback log beside it keeps every labelled answer)",
    )
    monitoring.add_argument(
        "--prediction_log_flush_rows",
        type=int,
        default=defaults.prediction_log_flush_rows,
        help="records per part written (prediction and feedback logs)",
    )
    monitoring.add_argument(
        "--prediction_log_flush_seconds",
        type=float,
        default=defaults.prediction_log_flush_seconds,
        help="a part at least this often",
    )
    monitoring.add_argument(
        "--prediction_log_queue",
        type=int,
        default=defaults.prediction_log_queue,
        help="records held while the writer is slow (S3 stalled); beyond them, dropped and counted",
    )
    feedback = parser.add_argument_group("live labels (POST /v1/models/<name>:feedback)")
    feedback.add_argument(
        "--remembered_answers",
        type=int,
        default=defaults.remembered_answers,
        help="recent answers kept in memory, so that feedback can name them by id or text",
    )
    feedback.add_argument(
        "--answer_key_file",
        default=defaults.answer_key_file,
        help="the key that signs answer ids, shared by every replica (created when missing); env ANSWER_KEY "
        "or ANSWER_KEY_FILE instead; without any, a key of this process only",
    )
    explain = parser.add_argument_group(
        "explanations (POST /v1/models/<name>:explain; 400 beyond the bounds)"
    )
    explain.add_argument(
        "--explain_max_texts", type=int, default=defaults.explain.max_texts, help="texts per explain request"
    )
    explain.add_argument(
        "--explain_max_words", type=int, default=defaults.explain.max_words, help="words per explained text"
    )
    parser.set_defaults(model_name=os.environ.get("MODEL_NAME", "sentiment"))
    return parser.parse_args(argv)


def serving_options(args: argparse.Namespace) -> ServingOptions:
    return ServingOptions(
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_batch_wait_ms,
        limits=RequestLimits(args.max_instances, args.max_text_chars),
        reload_seconds=args.reload_interval_seconds,
        load_attempts=args.load_attempts,
        load_backoff_seconds=args.load_backoff_seconds,
        load_backoff_max_seconds=args.load_backoff_max_seconds,
        runtime=args.runtime,
        drift_window=args.drift_window,
        drift_min_texts=args.drift_min_texts,
        prediction_log=args.prediction_log,
        prediction_log_sample=args.prediction_log_sample,
        prediction_log_flush_rows=args.prediction_log_flush_rows,
        prediction_log_flush_seconds=args.prediction_log_flush_seconds,
        prediction_log_queue=args.prediction_log_queue,
        remembered_answers=args.remembered_answers,
        answer_key_file=args.answer_key_file,
        explain=ExplainLimits(args.explain_max_texts, args.explain_max_words),
    )


def add_feedback_route(app, model: SentimentPredictor) -> None:
    """``POST /v1/models/<name>:feedback``: a JSON list of ``{"id"|"text": ..., "label": ...}``; answers
    ``{"accepted": n, ...}``, 400 with a message for a bad body, 404 for another model's name."""

    async def feedback(model_name: str, request: Request) -> dict:
        if model_name != model.name:
            raise ModelNotFound(model_name)
        try:
            payload = await request.json()
        except ValueError as exc:
            raise InvalidInput(f"the feedback body is not valid JSON: {exc}") from exc
        return model.feedback(payload)

    app.add_api_route("/v1/models/{model_name}:feedback", feedback, methods=["POST"])


class WithoutNotReadyTracebacks(logging.Filter):
    """Drops kserve's error log with a traceback for each request it answers 503 "not ready" (every
    readiness probe while the model loads): the 503 says so, and the loader logs its own progress."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ModelNotReady))


def run(args: argparse.Namespace) -> None:
    """``python -m serving`` with its parsed ``args`` (:func:`parse_args`)."""
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    model = SentimentPredictor(args.model_name, args.model_uri, serving_options(args))
    add_feedback_route(model_server.app, model)
    model_server.app.add_exception_handler(RequestValidationError, invalid_body_handler)
    model_server.app.add_exception_handler(HTTPException, http_error_handler)
    model_server.app.add_middleware(
        InferenceGuard, max_body_bytes=args.max_body_bytes, model_version=lambda: model.model_version
    )
    token = os.environ.get(TOKEN_ENV, "")
    if token:  # added last, so it runs first: a refused caller's body is never read
        model_server.app.add_middleware(TokenGuard, token=token)
    logger.info(
        "state-changing routes (repository load/unload, :feedback): %s",
        f"token required ({TOKEN_ENV})" if token else f"open (no {TOKEN_ENV} set)",
    )
    server = kserve.ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=args.enable_grpc,
        registered_models=ReloadingRepository(),
    )
    # The server listens at once (live) and the model loads beside it: not ready (503) until it has, so a
    # registry or object store that is down at start means retries, not a crash loop.
    server.register_model(model)
    threading.Thread(target=load_or_exit, args=(model,), name="model-loader", daemon=True).start()
    server.start([])


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(kserve.logging.KSERVE_LOGGER_NAME).addFilter(WithoutNotReadyTracebacks())
    run(parse_args(argv))


def load_or_exit(model: SentimentPredictor) -> None:
    """Load the model (retrying as configured); end the process where retrying cannot help: no champion
    registered, or ``--load_attempts`` spent."""
    try:
        model.load()
    except ChampionNotFound as exc:
        logger.error("%s", exc)
        os._exit(1)  # the server runs in the main thread: nothing else would stop it
    except Exception:
        logger.exception("loading %s failed for good", model.model_uri)
        os._exit(1)


if __name__ == "__main__":
    main()
