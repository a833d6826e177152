"""Every image a compiled pipeline references is one that `make images` builds and loads: the training
pipeline `make compile` writes, the monitoring pipeline `make schedule` submits (both with the images make
passes, the training pipeline a retraining runs nested in it included)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import REPO, make, user_environment

SCHEDULED = """
import json, sys
from pathlib import Path
from pipelines.params import DEFAULT_PARAMS_FILE
from pipelines.schedule import scheduled_params, scheduled_run

params = scheduled_params(DEFAULT_PARAMS_FILE)
package, arguments = scheduled_run(params, params.cluster.endpoints.predictions, Path(sys.argv[1]))
print(json.dumps({"package": package, "arguments": arguments}))
"""


def executors(package: Path) -> dict:
    pipeline_spec = next(yaml.safe_load_all(package.read_text()))
    return {name: e["container"] for name, e in pipeline_spec["deploymentSpec"]["executors"].items()}


def test_every_pipeline_runs_the_images_make_images_builds(tmp_path: Path) -> None:
    env, home = user_environment(tmp_path / "home"), tmp_path / "mlops"
    dry = make("-n", "images", f"MLOPS_HOME={home}", env=env)
    train_image, serve_image = re.findall(r"docker build -f Dockerfile\.(?:train|serve) -t (\S+)", dry)
    assert train_image.startswith("sentiment-mlops-train:") and serve_image.startswith(
        "sentiment-mlops-serve:"
    )

    # make compile, as typed: every step of the training pipeline in the train image
    make("compile", f"MLOPS_HOME={home}", env=env)
    training = executors(home / "sentiment_pipeline.yaml")
    assert "exec-deploy" in training and {c["image"] for c in training.values()} == {train_image}

    # make schedule's monitoring pipeline and its arguments, with the images make passes to its commands
    shown = make(
        "-s", "--eval", 'images-passed: ; @echo "$$TRAIN_IMAGE $$SERVE_IMAGE"', "images-passed", env=env
    )
    assert shown.split() == [train_image, serve_image]
    passed = env | {"TRAIN_IMAGE": train_image, "SERVE_IMAGE": serve_image}
    done = subprocess.run(
        [sys.executable, "-c", SCHEDULED, str(tmp_path)], cwd=REPO, env=passed, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scheduled = json.loads(done.stdout.splitlines()[-1])
    monitoring = executors(Path(scheduled["package"]))
    assert {c["image"] for c in monitoring.values()} == {train_image}
    assert {"exec-monitor", "exec-train-transformer", "exec-deploy"} <= set(monitoring)  # the retraining's
    assert scheduled["arguments"]["deploy_config"]["serve_image"] == serve_image
