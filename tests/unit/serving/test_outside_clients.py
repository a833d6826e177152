"""The predictor through the clients other people use: NVIDIA's tritonclient (HTTP and gRPC, in a process
of its own: tests/triton_probe.py), the most used Open Inference Protocol client, and kserve's own
InferenceRESTClient and InferenceGRPCClient: liveness, readiness, metadata and infer, each answer equal to
the registered model's."""

import asyncio
import json
import subprocess
import sys

import grpc
import numpy as np
import pandas as pd
import pytest
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from core.labels import probability_columns
from tests.helpers import REPO

TEXTS = ["I love the new phone!", "awful experience with my flight", "the concert is scheduled for 5pm"]


@pytest.fixture(scope="module")
def expected(champion_model) -> pd.DataFrame:
    return champion_model.predict(pd.DataFrame({"text": TEXTS}))


def assert_answers(labels, probabilities, expected: pd.DataFrame) -> None:
    assert [label.decode() if isinstance(label, bytes) else label for label in labels] == expected[
        "label"
    ].tolist()
    np.testing.assert_allclose(probabilities, expected[probability_columns()].to_numpy(), atol=1e-6)


def texts_tensor() -> np.ndarray:
    return np.array([text.encode() for text in TEXTS], dtype=object)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritonclient(model_server, expected, protocol: str) -> None:
    url, grpc_address = model_server
    address = grpc_address if protocol == "grpc" else url.removeprefix("http://")
    result = subprocess.run(
        [sys.executable, "-m", "tests.triton_probe", protocol, address, "sentiment", *TEXTS],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout)
    assert read["live"] and read["ready"] and read["model_ready"]
    assert read["outputs"] == ["label", "id", "probabilities"]
    assert_answers(read["labels"], np.array(read["probabilities"]), expected)


def kserve_request() -> InferRequest:
    tensor = InferInput("text", [len(TEXTS)], "BYTES")
    tensor.set_data_from_numpy(texts_tensor())
    return InferRequest(model_name="sentiment", infer_inputs=[tensor])


def test_kserve_rest_client(model_server, expected) -> None:
    url, _ = model_server

    async def calls():
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            assert await client.is_server_live(url) and await client.is_server_ready(url)
            assert await client.is_model_ready(url, "sentiment")
            return await client.infer(url, kserve_request(), model_name="sentiment")
        finally:
            await client.close()

    response = asyncio.run(calls())
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert_answers(outputs["label"], outputs["probabilities"], expected)


def test_kserve_grpc_client_reads_raw_output_contents(model_server, expected) -> None:
    _, grpc_address = model_server

    async def calls():
        client = InferenceGRPCClient(grpc_address)
        try:
            assert await client.is_server_ready() and await client.is_model_ready("sentiment")
            return await client.infer(kserve_request())
        finally:
            await client.close()

    response = asyncio.run(calls())
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert_answers(outputs["label"], outputs["probabilities"], expected)


def test_grpc_answers_put_every_output_in_raw_output_contents(model_server) -> None:
    """All outputs raw, none in ``contents``: the spec allows one form per response, and Triton's clients
    read numeric outputs only from the raw form."""
    _, grpc_address = model_server
    request = pb.ModelInferRequest(
        model_name="sentiment",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="text",
                datatype="BYTES",
                shape=[2],
                contents=pb.InferTensorContents(bytes_contents=[b"a", b"b"]),
            )
        ],
    )
    with grpc.insecure_channel(grpc_address) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert [o.name for o in response.outputs] == ["label", "id", "probabilities"]
    assert len(response.raw_output_contents) == 3
    assert not any(o.HasField("contents") for o in response.outputs)
    assert len(response.raw_output_contents[2]) == 2 * 3 * 4  # [2, 3] FP32
