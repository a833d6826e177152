"""Unit tests for serving.http_guard on a small FastAPI app served through starlette's TestClient."""

import uuid

import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from serving.http_guard import InferenceGuard, http_error_handler, invalid_body_handler, protocol_of

LIMIT = 64


class V2Body(BaseModel):
    inputs: list[dict]


@pytest.fixture
def version():
    return f"guard-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(version):
    app = FastAPI()

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request):
        body = await request.body()
        if body == b"boom":
            raise RuntimeError("model failed")
        return {"name": name, "body": body.decode()}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, body: V2Body):
        return {"inputs": len(body.inputs)}

    @app.post("/v2/models/{name}/versions/{number}/infer")
    async def infer_raw(name: str, number: str, request: Request):
        return {"bytes": len(await request.body())}

    @app.post("/upload")
    async def upload(request: Request):
        return {"bytes": len(await request.body())}

    @app.get("/teapot")
    async def teapot():
        raise HTTPException(status_code=418, detail="short and stout", headers={"x-kind": "teapot"})

    app.add_exception_handler(RequestValidationError, invalid_body_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_middleware(InferenceGuard, max_body_bytes=LIMIT, model_version=lambda: version)
    return TestClient(app, raise_server_exceptions=False)


def requests_total(protocol, version, code):
    labels = {"protocol": protocol, "model_version": version, "code": code}
    return REGISTRY.get_sample_value("sentiment_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/models/sentiment:predict", "v1"),
        ("POST", "/v2/models/sentiment/infer", "v2"),
        ("POST", "/v2/models/sentiment/versions/3/infer", "v2"),
        ("GET", "/v1/models/sentiment:predict", None),
        ("POST", "/v1/models/sentiment", None),
        ("POST", "/v1/models/a/b:predict", None),
        ("POST", "/v2/models/sentiment/ready", None),
    ],
)
def test_protocol_of(method, path, expected):
    assert protocol_of(method, path) == expected


def test_body_at_the_limit_reaches_the_app_and_is_counted(client, version):
    body = "é" * (LIMIT // 2)  # 64 UTF-8 bytes
    answer = client.post(
        "/v1/models/sentiment:predict",
        content=body.encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 200 and answer.json() == {"name": "sentiment", "body": body}
    assert requests_total("v1", version, "200") == 1
    count = REGISTRY.get_sample_value(
        "sentiment_request_duration_seconds_count", {"protocol": "v1", "model_version": version}
    )
    assert count == 1


def test_oversized_body_is_413_before_the_app(client, version):
    chunks = iter([b"x" * 40, b"x" * 40])  # streamed: the limit is passed on the second chunk
    answer = client.post("/v1/models/sentiment:predict", content=chunks)
    assert answer.status_code == 413
    assert answer.json() == {"error": f"request body over the limit of {LIMIT} bytes"}
    assert requests_total("v1", version, "413") == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(client, version, content_type):
    answer = client.post("/v2/models/m/infer", content=b"{}", headers={"content-type": content_type})
    assert answer.status_code == 415
    assert answer.json()["error"].startswith(f"unsupported Content-Type {content_type!r}")
    assert requests_total("v2", version, "415") == 1


def test_binary_tensors_are_allowed_for_v2_only(client):
    octet = {"content-type": "application/octet-stream"}
    assert client.post("/v1/models/m:predict", content=b"{}", headers=octet).status_code == 415
    v2 = client.post("/v2/models/m/versions/1/infer", content=b"\x00" * 12, headers=octet)
    assert v2.status_code == 200 and v2.json() == {"bytes": 12}


def test_other_routes_pass_through_untouched(client):
    headers = {"content-type": "text/plain"}
    assert client.post("/upload", content=b"y" * (LIMIT * 4), headers=headers).json() == {"bytes": LIMIT * 4}


def test_a_failing_app_is_counted_as_500(client, version):
    answer = client.post(
        "/v1/models/m:predict", content=b"boom", headers={"content-type": "Application/JSON"}
    )
    assert answer.status_code == 500
    assert requests_total("v1", version, "500") == 1


def test_unparseable_v2_body_is_400_with_an_error_message(client, version):
    answer = client.post("/v2/models/m/infer", json={"outputs": []})
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid request body: body.inputs: Field required"}
    assert requests_total("v2", version, "400") == 1


def test_http_errors_are_answered_as_error_objects(client):
    answer = client.get("/teapot")
    assert answer.status_code == 418
    assert answer.json() == {"error": "short and stout"} and answer.headers["x-kind"] == "teapot"


@pytest.mark.parametrize(
    ("headers", "seen"),
    [
        ({}, "application/json"),  # tritonclient's JSON requests name no type
        ({"content-type": "application/json"}, "application/json"),
        ({"inference-header-content-length": "12"}, None),  # binary tensors: left to kserve
    ],
)
def test_a_body_without_a_content_type_is_read_as_json(headers, seen) -> None:
    from serving.http_guard import json_by_default

    scope = {"headers": [(name.encode(), value.encode()) for name, value in headers.items()]}
    found = dict(json_by_default(scope)["headers"]).get(b"content-type")
    assert (found.decode() if found else None) == seen
