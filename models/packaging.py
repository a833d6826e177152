"""Logging a sentiment model to MLflow: the one place that decides what a registered model carries.

A model carries its artifacts, the ``models`` and ``core`` packages as code (nothing from the pipeline
steps, serving or rollout), a signature, and pip requirements pinned to the versions installed where it
was trained (so pyproject.toml stays the only place a version is written).
"""

import logging
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from core.labels import LABELS
from models.output import probabilities_frame

logger = logging.getLogger(__name__)

PACKAGES_SHIPPED = ("models", "core")
ROOT = Path(__file__).resolve().parent.parent
# What every model needs to load; each family adds its own.
BASE_REQUIREMENTS = ("mlflow", "pandas", "torch")


def pinned(packages: tuple[str, ...]) -> list[str]:
    """``name==version`` of each installed package."""
    return [f"{name}=={version(name)}" for name in packages]


def _model_arguments(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], config: dict, requirements: tuple
) -> dict:
    """What every logged or saved sentiment model is given (see the module's docstring)."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({"text": ["what a great day", "this is awful"]})
    output = probabilities_frame(list(LABELS), np.full((2, len(LABELS)), 1.0 / len(LABELS)))
    return {
        "python_model": python_model,
        "artifacts": artifacts,
        "code_paths": [str(ROOT / package) for package in PACKAGES_SHIPPED],
        "model_config": config,
        "signature": infer_signature(example, output),
        "pip_requirements": pinned(BASE_REQUIREMENTS + requirements),
    }


def log_sentiment_model(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], config: dict, requirements: tuple
) -> str:
    """Log ``python_model`` with ``artifacts`` and model ``config`` as ``model`` in the active run; return
    its URI."""
    info = mlflow.pyfunc.log_model(
        name="model", **_model_arguments(python_model, artifacts, config, requirements)
    )
    logger.info("logged model %s", info.model_uri)
    return info.model_uri


def save_sentiment_model(
    python_model: mlflow.pyfunc.PythonModel,
    artifacts: dict[str, str],
    config: dict,
    requirements: tuple,
    path: Path,
) -> Path:
    """Save the same model as :func:`log_sentiment_model` logs to the local folder ``path`` (a member of a
    model that carries others, models/ensemble.py); return ``path``."""
    mlflow.pyfunc.save_model(
        path=str(path), **_model_arguments(python_model, artifacts, config, requirements)
    )
    return path
