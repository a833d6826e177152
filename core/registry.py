"""The model registry's names: ``models:/<name>/<version>`` and ``models:/<name>@<alias>``, resolved in one
place for the gate, serving, rollout and monitoring."""

import re

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION_ALIAS = "champion"
_REGISTRY_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>.+))")


class VersionNotFound(LookupError):
    """The URI names a version or alias the registry does not hold (e.g. no run promoted one yet)."""


def is_registry_uri(model_uri: str) -> bool:
    """Whether ``model_uri`` names a registered version or alias (not a run's or a logged model's URI)."""
    return _REGISTRY_URI.fullmatch(model_uri) is not None


def resolve(model_uri: str, client: mlflow.MlflowClient | None = None) -> ModelVersion:
    """The registered version ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` names."""
    match = _REGISTRY_URI.fullmatch(model_uri)
    if not match:
        raise ValueError(f"not a registry model URI (models:/<name>/<version> or @<alias>): {model_uri!r}")
    client = client or mlflow.MlflowClient()
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(match["name"], match["alias"])
        return client.get_model_version(match["name"], match["version"])
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST" and "not found" not in exc.message.lower():
            raise
        raise VersionNotFound(
            f"cannot resolve {model_uri} in the registry at {mlflow.get_tracking_uri()}: {exc.message}"
        ) from exc


def champion(model_name: str, client: mlflow.MlflowClient | None = None) -> ModelVersion | None:
    """The version the ``champion`` alias points at, or None when there is none yet."""
    try:
        return resolve(f"models:/{model_name}@{CHAMPION_ALIAS}", client)
    except VersionNotFound:
        return None
