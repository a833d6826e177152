"""The real KServe model server, serving a champion registered by the real train/evaluate/gate steps."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest

from components.evaluate import evaluate
from components.gate import gate
from components.labels import LABELS, probability_columns
from components.tracking import ensure_experiment
from components.train_svm import train_svm
from tests.helpers import free_port, start_model_server, stop_process, write_splits

TEXTS = ["I love the new phone!", "awful experience with my flight", "the concert is scheduled for 5pm"]


@pytest.fixture(scope="module")
def champion_store(tmp_path_factory) -> str:
    """A sqlite MLflow store whose `sentiment@champion` came through train_svm -> evaluate -> gate."""
    root = tmp_path_factory.mktemp("champion")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ensure_experiment(uri, "sentiment", (root / "mlartifacts").as_uri())
    paths = write_splits(root, seed=2)
    trained = train_svm(paths["train"], paths["validation"], uri, "sentiment")
    evaluate(trained.run_id, trained.model_uri, paths["test"], uri)
    assert gate([(trained.run_id, trained.model_uri)], paths["test"], uri, "sentiment").promoted
    return uri


@pytest.fixture(scope="module")
def server(champion_store: str, tmp_path_factory):
    process, url, grpc_address = start_model_server(
        champion_store, tmp_path_factory.mktemp("server") / "server.log"
    )
    yield url, grpc_address
    stop_process(process)


@pytest.fixture(scope="module")
def expected(champion_store: str) -> pd.DataFrame:
    """What the registered champion itself answers for TEXTS, loaded straight from MLflow."""
    mlflow.set_tracking_uri(champion_store)
    return mlflow.pyfunc.load_model("models:/sentiment@champion").predict(pd.DataFrame({"text": TEXTS}))


def test_health_and_metadata(server) -> None:
    url, _ = server
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/sentiment/ready").status_code == 200
    assert httpx.get(f"{url}/v1/models/sentiment").json() == {"name": "sentiment", "ready": True}
    assert httpx.get(f"{url}/v1/models/unknown").status_code == 404


def test_v1_answers_match_the_registered_model(server, expected: pd.DataFrame) -> None:
    url, _ = server
    body = httpx.post(f"{url}/v1/models/sentiment:predict", json={"instances": TEXTS}).json()
    assert body["model_version"] == "1"
    assert (
        [p["label"] for p in body["predictions"]]
        == expected["label"].tolist()
        == [
            "positive",
            "negative",
            "neutral",
        ]
    )
    served = np.array([[p["probabilities"][label] for label in LABELS] for p in body["predictions"]])
    np.testing.assert_allclose(served, expected[probability_columns()].to_numpy(), atol=1e-6)
    as_objects = httpx.post(
        f"{url}/v1/models/sentiment:predict", json={"instances": [{"text": t} for t in TEXTS]}
    ).json()
    assert as_objects["predictions"] == body["predictions"]


def test_v2_answers_match_the_registered_model(server, expected: pd.DataFrame) -> None:
    url, _ = server
    request = {"id": "r1", "inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS}]}
    body = httpx.post(f"{url}/v2/models/sentiment/infer", json=request).json()
    assert (body["id"], body["model_version"]) == ("r1", "1")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["data"] == expected["label"].tolist()
    assert outputs["probabilities"]["shape"] == [3, 3]
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (3, 3)),
        expected[probability_columns()].to_numpy(),
        atol=1e-6,
    )


def test_grpc_answers_match_the_registered_model(server, expected: pd.DataFrame) -> None:
    _, grpc_address = server

    async def infer():
        client = InferenceGRPCClient(grpc_address)
        tensor = InferInput("text", [3], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
        return await client.infer(InferRequest(model_name="sentiment", infer_inputs=[tensor]))

    outputs = {o.name: o.as_numpy() for o in asyncio.run(infer()).outputs}
    assert [label.decode() for label in outputs["label"]] == expected["label"].tolist()
    np.testing.assert_allclose(outputs["probabilities"], expected[probability_columns()], atol=1e-6)


V1 = "/v1/models/sentiment:predict"
V2 = "/v2/models/sentiment/infer"


def v2_body(datatype="BYTES", shape=(1,), data=("fine",)) -> dict:
    return {"inputs": [{"name": "text", "shape": list(shape), "datatype": datatype, "data": list(data)}]}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (V1, {"instances": []}, "non-empty list"),
        (V1, {"instances": "just a string"}, "list"),
        (V1, {"texts": ["hi"]}, '"instances"'),
        (V1, [1, 2], '"instances"'),
        (V1, {"instances": [1]}, "instances[0] must be a string, got int"),
        (V1, {"instances": ["ok", None]}, "instances[1] must be a string, got NoneType"),
        (V1, {"instances": [["nested"]]}, "must be a string, got list"),
        (V1, {"instances": [{"txt": "x"}]}, 'without a "text" field'),
        (V1, {"instances": ["   "]}, "instances[0] is empty"),
        (V2, v2_body(datatype="FP32", data=[1.0]), "must have datatype BYTES"),
        (V2, v2_body(shape=(3,)), "does not match its shape"),
        (V2, v2_body(shape=(0,), data=()), "n >= 1"),
        (V2, v2_body(data=[5]), "text[0] must be a string, got int"),
        (V2, {"inputs": []}, "exactly one input tensor"),
        (V2, {"inputs": [v2_body()["inputs"][0]] * 2}, "exactly one input tensor"),
    ],
)
def test_malformed_requests_get_400_with_a_message(server, path: str, body, message: str) -> None:
    url, _ = server
    response = httpx.post(f"{url}{path}", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "content", "headers"),
    [
        (V1, b"{not json", {"content-type": "application/json"}),
        (V1, b'{"instances": ["hi"]}', {"content-type": "text/plain"}),
        (V2, b"{not json", {"content-type": "application/json"}),
        (V2, b"{}", {"content-type": "application/json"}),
    ],
)
def test_unreadable_bodies_get_4xx_and_the_server_stays_up(server, path, content, headers) -> None:
    url, _ = server
    response = httpx.post(f"{url}{path}", content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_server_refuses_to_start_without_a_champion(tmp_path: Path) -> None:
    """No champion in the registry: the server exits with a clear error instead of serving nothing."""
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    ensure_experiment(uri, "sentiment", None)
    result = subprocess.run(
        [sys.executable, "-m", "serving", "--http_port", str(free_port()), "--grpc_port", str(free_port())],
        env={"MLFLOW_TRACKING_URI": uri, "PATH": "/usr/bin:/bin", "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    assert "sentiment" in result.stderr and "champion" in result.stderr
