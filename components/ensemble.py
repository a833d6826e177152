"""ensemble: a soft-voting candidate that averages the class probabilities of the other candidates'
models, logged to MLflow as a pyfunc model that carries its members. Its ``runtime`` config (``fp32`` or
``int8``) passes on to the members that have one (the transformer)."""

import json
import logging
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import Model

from components.labels import LABELS, probability_columns
from components.metrics import classification_metrics
from components.sentiment_model import probabilities_frame
from components.tracking import use_tracking
from components.train_svm import TrainResult

logger = logging.getLogger(__name__)

SERVING_REQUIREMENTS = [
    "torch==2.13.0", "transformers==5.24.0", "sentence-transformers==6.2.0", "scikit-learn==1.9.1",
    "skops==0.16.0", "pandas==2.3.3", "mlflow==3.17.2",
]  # fmt: skip


def load_member(path: str, runtime: str) -> mlflow.pyfunc.PyFuncModel:
    """Load a member model, in ``runtime`` when its config has that setting."""
    config = Model.load(path).flavors["python_function"].get("config") or {}
    return mlflow.pyfunc.load_model(path, model_config={"runtime": runtime} if "runtime" in config else None)


class SoftVotingClassifier(mlflow.pyfunc.PythonModel):
    """Averages its members' probability columns; answers like every other candidate."""

    family = "ensemble"

    def load_context(self, context) -> None:
        runtime = (context.model_config or {}).get("runtime", "fp32")
        names = sorted(name for name in context.artifacts if name.startswith("member_"))
        self.members = [load_member(context.artifacts[name], runtime) for name in names]

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        frames = [member.predict(model_input)[probability_columns()].to_numpy() for member in self.members]
        return probabilities_frame(list(LABELS), np.mean(frames, axis=0))


def ensemble(
    member_uris: list[str],
    validation_path: str,
    tracking_uri: str,
    experiment: str,
    run_params: str = "{}",
) -> TrainResult:
    """Log the soft-voting ensemble of ``member_uris`` as a candidate and score it on validation."""
    from mlflow.models import infer_signature

    use_tracking(tracking_uri, experiment)
    validation = pd.read_parquet(validation_path)
    with mlflow.start_run(run_name="ensemble") as run:
        started = time.perf_counter()
        members = {
            f"member_{i}": mlflow.artifacts.download_artifacts(uri) for i, uri in enumerate(member_uris)
        }
        mlflow.log_params({f"pipeline.{k}": v for k, v in json.loads(run_params).items()})
        mlflow.log_params({"model_family": "ensemble", "members": ",".join(member_uris), "voting": "soft",
                           "train_rows": "n/a", "validation_rows": len(validation)})  # fmt: skip
        model = SoftVotingClassifier()
        model.members = [mlflow.pyfunc.load_model(path) for _, path in sorted(members.items())]
        output = model.predict(None, validation[["text"]])
        metrics = classification_metrics(validation["label"].tolist(), output["label"].tolist())
        mlflow.log_metrics({"train_seconds": time.perf_counter() - started,
                            **{f"validation_{k}": v for k, v in metrics.items()}})  # fmt: skip
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SoftVotingClassifier(),
            artifacts=members,
            model_config={"runtime": "fp32"},
            code_paths=[str(Path(__file__).parent)],
            signature=infer_signature(validation[["text"]].head(2), output.head(2)),
            pip_requirements=SERVING_REQUIREMENTS,
        )
        mlflow.set_tag("model_uri", info.model_uri)
    logger.info("ensemble of %d: validation macro recall %.4f", len(member_uris), metrics["macro_recall"])
    return TrainResult(run.info.run_id, info.model_uri, metrics)
