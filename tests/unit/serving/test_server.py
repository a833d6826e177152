"""The real KServe model server (``python -m serving``), serving a champion registered by the real
train/evaluate/gate steps: protocols, batching under concurrency, request limits and metrics."""

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grpc
import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from sklearn.metrics import recall_score

from core.labels import LABELS, probability_columns
from core.tracking import ensure_experiment
from monitoring.live_quality import quality_from_counts
from tests.conftest import ADMIN_TOKEN, SERVER_LIMITS
from tests.helpers import (
    HTTP,
    free_port,
    metric_value,
    scrape_metrics,
    sentiment_frame,
)

TEXTS = ["I love the new phone!", "awful experience with my flight", "the concert is scheduled for 5pm"]
V1 = "/v1/models/sentiment:predict"
V2 = "/v2/models/sentiment/infer"


@pytest.fixture(scope="module")
def champion(champion_model) -> mlflow.pyfunc.PyFuncModel:
    """The registered champion itself, loaded straight from MLflow: what the server must answer."""
    return champion_model


@pytest.fixture(scope="module")
def expected(champion) -> pd.DataFrame:
    return champion.predict(pd.DataFrame({"text": TEXTS}))


def grpc_infer(grpc_address: str, texts: list[str]):
    async def infer():
        client = InferenceGRPCClient(grpc_address)
        try:
            tensor = InferInput("text", [len(texts)], "BYTES")
            tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
            return await client.infer(InferRequest(model_name="sentiment", infer_inputs=[tensor]))
        finally:
            await client.close()

    return asyncio.run(infer())


def test_health_readiness_and_metadata_over_rest(model_server) -> None:
    url, _ = model_server
    assert HTTP.get(f"{url}/v2/health/ready").status_code == 200
    assert HTTP.get(f"{url}/v2/health/live").status_code == 200
    assert HTTP.get(f"{url}/v2/models/sentiment/ready").status_code == 200
    assert HTTP.get(f"{url}/v1/models/sentiment").json() == {"name": "sentiment", "ready": True}
    assert HTTP.get(f"{url}/v1/models/unknown").status_code == 404
    metadata = HTTP.get(f"{url}/v2/models/sentiment").json()
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in metadata["outputs"]} == {
        "label": [-1],
        "id": [-1],
        "probabilities": [-1, 3],
    }


def test_readiness_and_metadata_over_grpc(model_server) -> None:
    _, grpc_address = model_server
    with grpc.insecure_channel(grpc_address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(pb.ServerLiveRequest()).live
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="sentiment")).ready
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="sentiment"))
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("text", "BYTES", [-1])]
    assert [t.name for t in metadata.outputs] == ["label", "id", "probabilities"]


def test_v1_answers_match_the_registered_model(model_server, expected: pd.DataFrame) -> None:
    url, _ = model_server
    body = HTTP.post(f"{url}{V1}", json={"instances": TEXTS}).json()
    assert body["model_version"] == "1"
    assert [p["label"] for p in body["predictions"]] == expected["label"].tolist()
    assert expected["label"].tolist() == ["positive", "negative", "neutral"]
    served = np.array([[p["probabilities"][label] for label in LABELS] for p in body["predictions"]])
    np.testing.assert_allclose(served, expected[probability_columns()].to_numpy(), atol=1e-6)
    as_objects = HTTP.post(f"{url}{V1}", json={"instances": [{"text": t} for t in TEXTS]}).json()
    ids = [p.pop("id") for p in body["predictions"]] + [p.pop("id") for p in as_objects["predictions"]]
    assert as_objects["predictions"] == body["predictions"]
    assert len(set(ids)) == 2 * len(TEXTS)  # every answer has its own id, for feedback


def test_v2_answers_match_the_registered_model(model_server, expected: pd.DataFrame) -> None:
    url, _ = model_server
    request = {"id": "r1", "inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS}]}
    body = HTTP.post(f"{url}{V2}", json=request).json()
    assert (body["id"], body["model_version"]) == ("r1", "1")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["data"] == expected["label"].tolist()
    assert outputs["probabilities"]["shape"] == [3, 3]
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (3, 3)),
        expected[probability_columns()].to_numpy(),
        atol=1e-6,
    )


def test_grpc_answers_match_the_registered_model(model_server, expected: pd.DataFrame) -> None:
    _, grpc_address = model_server
    response = grpc_infer(grpc_address, TEXTS)
    assert response.model_version == "1"
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert [label.decode() for label in outputs["label"]] == expected["label"].tolist()
    np.testing.assert_allclose(outputs["probabilities"], expected[probability_columns()], atol=1e-6)


def test_concurrent_requests_are_batched_and_each_caller_gets_its_own_answer(model_server, champion) -> None:
    """96 concurrent requests of 1-3 different texts each, over v1 and v2: every caller gets the
    champion's answer for its own texts, and the server made fewer model calls than requests."""
    url, _ = model_server
    pool = sentiment_frame()["text"].tolist()
    requests = [pool[i : i + 1 + i % 3] for i in range(96)]
    truth = champion.predict(pd.DataFrame({"text": [t for texts in requests for t in texts]}))["label"]
    before = scrape_metrics(url)

    async def call(client: httpx.AsyncClient, i: int, texts: list[str]) -> list[str]:
        if i % 2:
            tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
            response = await client.post(V2, json={"inputs": [tensor]})
            response.raise_for_status()
            return response.json()["outputs"][0]["data"]
        response = await client.post(V1, json={"instances": texts})
        response.raise_for_status()
        return [p["label"] for p in response.json()["predictions"]]

    async def run_all() -> list[list[str]]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(call(client, i, texts) for i, texts in enumerate(requests)))

    answers = asyncio.run(run_all())
    assert [label for labels in answers for label in labels] == truth.tolist()
    after = scrape_metrics(url)
    calls = metric_value(after, "sentiment_batch_size_texts_count") - metric_value(
        before, "sentiment_batch_size_texts_count"
    )
    texts = metric_value(after, "sentiment_batch_size_texts_sum") - metric_value(
        before, "sentiment_batch_size_texts_sum"
    )
    assert texts == sum(len(t) for t in requests)
    assert 1 <= calls < len(requests)


def test_metrics_are_exposed_and_move_with_traffic(model_server) -> None:
    url, grpc_address = model_server
    before = scrape_metrics(url)
    assert (
        metric_value(
            before, "sentiment_model_info", name="sentiment", version="1", flavour="linear", runtime="fp32"
        )
        == 1
    )
    assert metric_value(before, "sentiment_model_load_duration_seconds") > 0
    assert metric_value(before, "sentiment_model_loads_total", outcome="success") == 1

    HTTP.post(f"{url}{V1}", json={"instances": TEXTS}).raise_for_status()
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["so happy with the album :)"]}
    HTTP.post(f"{url}{V2}", json={"inputs": [tensor]}).raise_for_status()
    grpc_infer(grpc_address, TEXTS[:2])
    assert HTTP.post(f"{url}{V1}", json={"instances": [7]}).status_code == 400
    after = scrape_metrics(url)

    def moved(sample: str, /, **labels: str) -> float:
        return metric_value(after, sample, **labels) - metric_value(before, sample, **labels)

    assert moved("sentiment_requests_total", protocol="v1", model_version="1", code="200") == 1
    assert moved("sentiment_requests_total", protocol="v1", model_version="1", code="400") == 1
    assert moved("sentiment_requests_total", protocol="v2", model_version="1", code="200") == 1
    assert moved("sentiment_requests_total", protocol="grpc", model_version="1", code="OK") == 1
    assert moved("sentiment_request_duration_seconds_count", protocol="v1", model_version="1") == 2
    assert moved("sentiment_request_duration_seconds_count", protocol="grpc", model_version="1") == 1
    predicted = sum(moved("sentiment_predictions_total", label=label, model_version="1") for label in LABELS)
    assert predicted == 6
    assert moved("sentiment_prediction_confidence_ratio_count", model_version="1") == 6
    assert moved("sentiment_input_length_characters_count") == 6
    assert moved("sentiment_input_length_characters_sum") == sum(map(len, TEXTS)) + 26 + sum(
        map(len, TEXTS[:2])
    )
    assert moved("sentiment_batch_queue_wait_seconds_count") == 3
    assert moved("sentiment_model_compute_seconds_count") == 3
    assert moved("request_predict_seconds_count", model_name="sentiment") == 4  # kserve's, with the 400


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
        (V1, {"instances": ["x"] * 17}, "17 texts in one request; the limit is 16"),
        (V1, {"instances": ["x" * 501]}, "instances[0] has 501 characters; the limit is 500"),
        (V2, v2_body(datatype="FP32", data=[1.0]), "must have datatype BYTES"),
        (V2, v2_body(shape=(3,)), "does not match its shape"),
        (V2, v2_body(shape=(0,), data=()), "n >= 1"),
        (V2, v2_body(shape=(-1,)), "a request needs sizes >= 0"),
        (V2, v2_body(data=[5]), "text[0] must be a string, got int"),
        (V2, v2_body(shape=(17,), data=["x"] * 17), "the limit is 16"),
        (V2, v2_body(data=["x" * 501]), "the limit is 500"),
        (V2, {"inputs": []}, "exactly one input tensor"),
        (V2, {"inputs": [v2_body()["inputs"][0]] * 2}, "exactly one input tensor"),
    ],
)
def test_malformed_requests_get_400_with_a_message(model_server, path: str, body, message: str) -> None:
    url, _ = model_server
    response = HTTP.post(f"{url}{path}", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_malformed_grpc_request_gets_invalid_argument(model_server) -> None:
    _, grpc_address = model_server
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        grpc_infer(grpc_address, ["x" * 501])
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 500" in raised.value.details()


OVERSIZED = b" " * (SERVER_LIMITS["max_body_bytes"] + 1)


@pytest.mark.parametrize(
    ("path", "content", "headers", "status", "message"),
    [
        (V1, b"{not json", {"content-type": "application/json"}, 400, "Unrecognized request format"),
        (V2, b"{not json", {"content-type": "application/json"}, 400, "invalid request body"),
        (V2, b"{}", {"content-type": "application/json"}, 400, "inputs"),
        (V1, b'{"instances": ["hi"]}', {"content-type": "text/plain"}, 415, "Content-Type"),
        (V2, b"{}", {"content-type": "application/xml"}, 415, "Content-Type"),
        (
            V1,
            b" " * (SERVER_LIMITS["max_body_bytes"] + 1),
            {"content-type": "application/json"},
            413,
            "limit",
        ),
        (
            V2,
            b" " * (SERVER_LIMITS["max_body_bytes"] + 1),
            {"content-type": "application/json"},
            413,
            "limit",
        ),
    ],
)
def test_unreadable_bodies_get_4xx_and_the_server_stays_up(
    model_server, path, content, headers, status, message
) -> None:
    url, _ = model_server
    response = HTTP.post(f"{url}{path}", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert HTTP.get(f"{url}/v2/health/ready").status_code == 200


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
    # the reason and what to do, as one logged line, not a crash's traceback
    assert f"cannot resolve models:/sentiment@champion in the registry at {uri}" in result.stderr
    assert "Run the pipeline first (make pipeline-run)" in result.stderr
    assert "Traceback" not in result.stderr


FEEDBACK = "/v1/models/sentiment:feedback"


@pytest.fixture
def tfidf_server(fast_model_server: str, fast_champion_store: str):
    """The session's TF-IDF predictor (FP32: the model has no INT8 runtime), whose feedback route takes
    ADMIN_TOKEN; (its url, the champion loaded here). Its counters are shared: read them as deltas."""
    mlflow.set_tracking_uri(fast_champion_store)
    return fast_model_server, mlflow.pyfunc.load_model("models:/sentiment@champion")


def test_feedback_on_answer_ids_counts_the_live_confusion_matrix(tfidf_server) -> None:
    """Label 30 answers (v1 ids, v2 ids and by text): the counters hold their confusion matrix, whose
    live quality (monitoring/live_quality.py, as the recording rules compute it) is the macro recall and
    accuracy computed here from the same answers and labels."""
    url, champion = tfidf_server
    frame = sentiment_frame().sample(n=30, random_state=5)
    texts, truth = frame["text"].tolist(), frame["label"].tolist()
    v1 = HTTP.post(f"{url}{V1}", json={"instances": texts[:15]}).json()["predictions"]
    feedback = [{"id": p["id"], "label": t} for p, t in zip(v1, truth[:15], strict=True)]
    body = {
        "id": "client-req-9",
        "inputs": [{"name": "text", "shape": [10], "datatype": "BYTES", "data": texts[15:25]}],
    }
    answered = HTTP.post(f"{url}{V2}", json=body).json()
    v2 = {o["name"]: o["data"] for o in answered["outputs"]}
    assert answered["id"] == "client-req-9" and len(set(v2["id"])) == 10  # one signed id per text
    feedback += [{"id": i, "label": t} for i, t in zip(v2["id"], truth[15:25], strict=True)]
    for text in texts[25:]:
        HTTP.post(f"{url}{V1}", json={"instances": [text]}).raise_for_status()
    feedback += [{"text": x, "label": t} for x, t in zip(texts[25:], truth[25:], strict=True)]
    before, token = scrape_metrics(url), {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for start in (0, 16):
        response = HTTP.post(f"{url}{FEEDBACK}", json=feedback[start : start + 16], headers=token)
        assert response.status_code == 200, response.text
        expected = {"accepted": len(feedback[start : start + 16]), "refused": [], "feedback_log": None}
        assert response.json() == expected
    after = scrape_metrics(url)
    predicted = champion.predict(pd.DataFrame({"text": texts}))["label"].tolist()
    accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    expected = Counter(zip(truth, predicted, strict=True))
    counted = {
        (label, guess): metric_value(
            after, "sentiment_live_labels_total", model_version="1", label=label, predicted=guess
        )
        - metric_value(before, "sentiment_live_labels_total", model_version="1", label=label, predicted=guess)
        for label in LABELS
        for guess in LABELS
    }
    assert counted == {cell: float(expected[cell]) for cell in counted}
    live = quality_from_counts(counted)
    assert live.labelled == 30 and live.accuracy == pytest.approx(accuracy)
    classes = sorted(set(truth))  # macro over the classes that have labels, as the rules average
    assert live.macro_recall == pytest.approx(recall_score(truth, predicted, labels=classes, average="macro"))
    assert live.lower <= live.macro_recall <= live.upper
    accepted = metric_value(after, "sentiment_feedback_rows_total", outcome="accepted")
    assert accepted - metric_value(before, "sentiment_feedback_rows_total", outcome="accepted") == 30


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            [{"id": "no-such-answer", "label": "positive"}],
            400,
            "id 'no-such-answer' refused: not an answer id",
        ),
        ([{"text": TEXTS[0], "label": "happy"}], 400, "label 'happy' is not one of"),
        (
            [{"text": TEXTS[0], "label": "positive"}] * 17,
            400,
            "17 feedback rows in one request; the limit is 16",
        ),
        ({"label": "positive"}, 400, "non-empty JSON list"),
        (b"[{not json", 400, "not valid JSON"),
    ],
)
def test_bad_feedback_gets_4xx_with_a_message(model_server, body, status: int, message: str) -> None:
    url, _ = model_server
    HTTP.post(f"{url}{V1}", json={"instances": [TEXTS[0]]}).raise_for_status()
    if isinstance(body, bytes):
        response = HTTP.post(f"{url}{FEEDBACK}", content=body, headers={"content-type": "application/json"})
    else:
        response = HTTP.post(f"{url}{FEEDBACK}", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_refused_row_does_not_sink_the_others_unless_the_body_is_atomic(model_server) -> None:
    url, _ = model_server
    (answer,) = HTTP.post(f"{url}{V1}", json={"instances": [TEXTS[1]]}).json()["predictions"]
    forged = answer["id"][:-4] + ("AAAA" if not answer["id"].endswith("AAAA") else "BBBB")
    rows = [{"id": answer["id"], "label": "positive"}, {"id": forged, "label": "neutral"}]
    response = HTTP.post(f"{url}{FEEDBACK}", json=rows)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1 and [r["row"] for r in body["refused"]] == [1]
    assert "signature does not match" in body["refused"][0]["reason"]
    atomic = HTTP.post(f"{url}{FEEDBACK}", json={"feedback": rows, "atomic": True})
    assert atomic.status_code == 400 and "nothing stored: [1] id" in atomic.json()["error"]


def test_feedback_for_another_model_is_404(model_server) -> None:
    url, _ = model_server
    response = HTTP.post(f"{url}/v1/models/other:feedback", json=[{"id": "x", "label": "positive"}])
    assert response.status_code == 404, response.text
