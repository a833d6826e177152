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


def log_sentiment_model(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], config: dict, requirements: tuple
) -> str:
    """Log ``python_model`` with ``artifacts`` and model ``config`` as ``model`` in the active run; return
    its URI."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({"text": ["what a great day", "this is awful"]})
    output = probabilities_frame(list(LABELS), np.full((2, len(LABELS)), 1.0 / len(LABELS)))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=artifacts,
        code_paths=[str(ROOT / package) for package in PACKAGES_SHIPPED],
        model_config=config,
        signature=infer_signature(example, output),
        pip_requirements=pinned(BASE_REQUIREMENTS + requirements),
    )
    logger.info("logged model %s", info.model_uri)
    return info.model_uri
