"""Which runtime the predictor serves a version in, for each --runtime and gate verdict."""

import mlflow
import pytest

from models.bundle import VersionDetails
from models.runtime_choice import RUNTIMES, choose_runtime, has_int8_runtime
from serving.predictor import ServingOptions


def details(int8_accepted: bool | None) -> VersionDetails:
    return VersionDetails("sentiment", "3", None, int8_accepted, {}, None)


@pytest.mark.parametrize(
    ("requested", "verdict", "has_int8", "runtime", "why"),
    [
        ("auto", True, True, "int8", "the gate accepted its INT8 runtime"),
        ("auto", False, True, "fp32", "the gate did not accept its INT8 runtime (int8_accepted=False)"),
        ("auto", None, True, "fp32", "the gate did not accept its INT8 runtime (int8_accepted=None)"),
        ("auto", True, False, "fp32", "the model has no INT8 runtime"),
        ("fp32", True, True, "fp32", "--runtime fp32"),
        ("int8", True, True, "int8", "the gate accepted its INT8 runtime"),
        (
            "int8",
            False,
            True,
            "int8",
            "--runtime int8, although the gate did not accept it (int8_accepted=False)",
        ),
        ("int8", True, False, "fp32", "the model has no INT8 runtime"),
    ],
)
def test_runtime_choice(requested, verdict, has_int8, runtime, why) -> None:
    assert choose_runtime(details(verdict), requested, has_int8) == (runtime, why)


def test_an_unversioned_model_has_no_verdict_and_runs_in_fp32_by_default() -> None:
    assert choose_runtime(None, "auto", has_int8=True)[0] == "fp32"


def test_the_default_runtime_is_auto() -> None:
    assert ServingOptions.runtime == "auto" and ServingOptions.runtime in RUNTIMES


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.mark.parametrize(
    ("config", "has_int8"), [({"runtime": "fp32", "batch_size": 8}, True), (None, False)]
)
def test_a_model_has_an_int8_runtime_when_its_logged_config_has_a_runtime(
    tracking_uri, config, has_int8
) -> None:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("runtime-choice")  # not the active experiment id another test's server left
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), model_config=config, pip_requirements=[]
        )
    assert has_int8_runtime(info.model_uri) is has_int8
