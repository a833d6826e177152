"""Models registered before the restructure still load: tests/fixtures/pre_move_models.tar.gz holds a
TF-IDF linear model and a one-member soft vote of it, logged by commit fbfa47c (their pickles name
components.sentiment_model.SentimentClassifier and components.ensemble.SoftVotingClassifier, and they
carry the old components/ folder as code); and a model logged now carries only the code it imports."""

import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from components.train_linear import train_linear_model
from pipelines.params import PipelineParams
from tests.helpers import write_splits
from tests.registry import sqlite_store

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "pre_move_models.tar.gz"
TEXTS = ["what a great day, I love it", "this is awful, I hate it"]
COLUMNS = ["label", "prob_negative", "prob_neutral", "prob_positive"]


@pytest.fixture(scope="module")
def pre_move(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pre_move")
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(folder, filter="data")
    return folder


def fresh_process_labels(folder: Path) -> list[str]:
    """Load and predict in a new interpreter that imports nothing from this repository first, as the
    predictor does."""
    script = (
        "import sys, mlflow, pandas as pd; m = mlflow.pyfunc.load_model(sys.argv[1]); "
        "print(','.join(m.predict(pd.DataFrame({'text': sys.argv[2:]}))['label']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), *TEXTS], capture_output=True, text=True, cwd=folder
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1].split(",")


@pytest.mark.parametrize("name", ["linear_tfidf", "ensemble"])
def test_a_pre_move_model_loads_in_a_fresh_process_and_in_one_that_imported_the_new_steps(pre_move, name):
    fresh = fresh_process_labels(pre_move / name)
    import components.gate  # noqa: F401  (the gate, judging an old champion, has the new package loaded)

    output = mlflow.pyfunc.load_model(str(pre_move / name)).predict(pd.DataFrame({"text": TEXTS}))
    assert list(output.columns) == COLUMNS
    assert output["label"].tolist() == fresh == ["positive", "negative"]


def test_a_pre_move_version_serves_from_the_registry(pre_move, tmp_path, monkeypatch):
    from serving.predictor import load_model, pin_version

    uri = sqlite_store(tmp_path / "mlflow.db")
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    client.create_registered_model("sentiment")
    version = client.create_model_version("sentiment", source=str(pre_move / "linear_tfidf")).version
    client.set_registered_model_alias("sentiment", "champion", version)
    pinned, served = pin_version("models:/sentiment@champion")
    assert (pinned, served) == (f"models:/sentiment/{version}", str(version))
    loaded = load_model(pinned, served)
    assert loaded.version == str(version)
    assert loaded.model.predict(pd.DataFrame({"text": TEXTS}))["label"].tolist() == ["positive", "negative"]


LINEAR_CODE = [  # what models/linear.py imports, directly or not, with the packages' __init__ files
    "core/__init__.py",
    "core/hub.py",
    "core/labels.py",
    "core/text.py",
    "models/__init__.py",
    "models/int8_encoder.py",
    "models/linear.py",
    "models/onnx_runtime.py",
    "models/output.py",
    "models/packaging.py",
]
ENSEMBLE_CODE = ["models/ensemble.py"]  # and its members' code


def shipped(model_folder: Path) -> list[str]:
    code = model_folder / "code"
    return sorted(p.relative_to(code).as_posix() for p in code.rglob("*.py"))


def own_code_labels(folder: Path, module: str) -> list[str]:
    """Load and predict in a new interpreter, checking that ``module`` came from the model's own code
    folder (not from this repository, which the venv also has on its path)."""
    script = (
        "import sys, importlib, mlflow, pandas as pd; m = mlflow.pyfunc.load_model(sys.argv[1]); "
        "labels = m.predict(pd.DataFrame({'text': sys.argv[3:]}))['label']; "
        "module = importlib.import_module(sys.argv[2]); "
        "assert module.__file__.startswith(sys.argv[1]), module; "
        "print(','.join(labels))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), module, *TEXTS],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1].split(",")


def test_a_model_logged_now_carries_only_the_code_it_imports_and_loads_from_it(tmp_path, tracking_uri):
    from models.ensemble import log_ensemble_model

    params = PipelineParams.load()
    paths = write_splits(tmp_path, seed=1)
    config = replace(params.train_linear, trials=0)
    result = train_linear_model(
        paths["train"], paths["validation"], "tfidf", config, params.run, tracking_uri, {}
    )
    linear = Path(mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path / "linear")))
    assert shipped(linear) == LINEAR_CODE  # no steps, serving, bundles, lineage or storage
    assert own_code_labels(linear, "models.linear") == ["positive", "negative"]
    with mlflow.start_run():
        uri = log_ensemble_model([str(linear)], None)
    ensemble = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "ensemble")))
    assert shipped(ensemble) == sorted(LINEAR_CODE + ENSEMBLE_CODE)
    assert own_code_labels(ensemble, "models.linear") == ["positive", "negative"]
