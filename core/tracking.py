"""MLflow connection helpers used by every step that logs or reads runs and models."""

import os

import mlflow


def _without_telemetry() -> None:
    """MLflow sends usage telemetry unless told not to: this project never does (the Makefile and the
    images set it too)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def use_tracking(tracking_uri: str, experiment: str | None = None) -> None:
    """Point MLflow at ``tracking_uri`` (and ``experiment``, created on first use)."""
    _without_telemetry()
    mlflow.set_tracking_uri(tracking_uri)
    if experiment:
        mlflow.set_experiment(experiment)


def ensure_experiment(tracking_uri: str, experiment: str, artifact_location: str | None) -> str:
    """Create ``experiment`` with ``artifact_location`` unless it exists; return its id."""
    _without_telemetry()
    client = mlflow.MlflowClient(tracking_uri)
    existing = client.get_experiment_by_name(experiment)
    if existing:
        return existing.experiment_id
    return client.create_experiment(experiment, artifact_location=artifact_location)
