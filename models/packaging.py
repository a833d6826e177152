"""Logging a sentiment model to MLflow: the one place that decides what a registered model carries.

A model carries its artifacts, as code only the modules of ``models`` and ``core`` that its class imports
(directly or not; a model that carries other models, an ensemble, also their code), nothing from the
pipeline steps, serving or rollout; a signature; and pip requirements pinned to the versions installed
where it was trained (so pyproject.toml stays the only place a version is written).
"""

import ast
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


def _module_file(name: str) -> Path | None:
    """The source file of the shipped package's module (or package) ``name``; None for anything else."""
    parts = name.split(".")
    if parts[0] not in PACKAGES_SHIPPED:
        return None
    module, package = ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")
    return module if module.is_file() else package if package.is_file() else None


def code_files(module: str) -> set[Path]:
    """The files of ``module`` and of every shipped module it imports, directly or not (imports inside
    functions included), with their packages' ``__init__.py``; paths relative to the repository root."""
    found: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        file = _module_file(name)
        if file is None or file in found:
            continue
        found.add(file)
        todo += [".".join(name.split(".")[:depth]) for depth in range(1, name.count(".") + 1)]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return {file.relative_to(ROOT) for file in found}


def _stage_code(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], folder: Path
) -> list[str]:
    """Copy into ``folder`` the code the model needs: its class's :func:`code_files`, and the code of each
    artifact that is itself a model (an ensemble's members); return the package folders to ship."""
    for relative in code_files(type(python_model).__module__):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, folder / relative)
    for artifact in map(Path, artifacts.values()):
        if (artifact / "MLmodel").is_file() and (artifact / "code").is_dir():
            shutil.copytree(artifact / "code", folder, dirs_exist_ok=True)
    return [str(folder / package) for package in PACKAGES_SHIPPED if (folder / package).is_dir()]


@contextmanager
def _model_arguments(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], config: dict, requirements: tuple
) -> Iterator[dict]:
    """What every logged or saved sentiment model is given (see the module's docstring)."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({"text": ["what a great day", "this is awful"]})
    output = probabilities_frame(list(LABELS), np.full((2, len(LABELS)), 1.0 / len(LABELS)))
    with tempfile.TemporaryDirectory() as staging:
        yield {
            "python_model": python_model,
            "artifacts": artifacts,
            "code_paths": _stage_code(python_model, artifacts, Path(staging)),
            "model_config": config,
            "signature": infer_signature(example, output),
            "pip_requirements": pinned(BASE_REQUIREMENTS + requirements),
        }


def log_sentiment_model(
    python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], config: dict, requirements: tuple
) -> str:
    """Log ``python_model`` with ``artifacts`` and model ``config`` as ``model`` in the active run; return
    its URI."""
    with _model_arguments(python_model, artifacts, config, requirements) as arguments:
        info = mlflow.pyfunc.log_model(name="model", **arguments)
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
    with _model_arguments(python_model, artifacts, config, requirements) as arguments:
        mlflow.pyfunc.save_model(path=str(path), **arguments)
    return path
