"""Start the predictor: ``python -m serving --model_name sentiment --model_uri models:/sentiment@champion``.

Takes every kserve ModelServer flag (--http_port, --grpc_port, --workers, ...). Keep --workers=1: the
Prometheus metrics on /metrics are per worker; scale with replicas instead.
"""

import argparse
import logging
import os

import kserve
from kserve import model_server

from serving.model import ChampionNotFound, SentimentModel

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
    parser.add_argument(
        "--model_uri",
        default=os.environ.get("MODEL_URI", "models:/sentiment@champion"),
        help="MLflow model URI to serve (env MODEL_URI)",
    )
    parser.add_argument(
        "--tracking_uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking URI (env MLFLOW_TRACKING_URI)",
    )
    parser.set_defaults(model_name=os.environ.get("MODEL_NAME", "sentiment"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    model = SentimentModel(args.model_name, args.model_uri)
    try:
        model.load()  # before the server listens: not ready until the model is loaded
    except ChampionNotFound as exc:
        logger.error("%s", exc)
        raise SystemExit(1) from exc
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers, enable_grpc=args.enable_grpc
    ).start([model])


if __name__ == "__main__":
    main()
