"""ASGI middleware on the kserve REST app, for the inference routes (v1 ``:predict``, v2 ``/infer``), the
feedback route (``:feedback``) and explanations (``:explain``): rejects oversized bodies (413) and non-JSON
content types (415) with a message before any parsing, reads a body without a Content-Type as JSON, and
counts and times every
inference request by protocol, serving model version and status code. Also the handlers that
answer a body FastAPI cannot parse (invalid JSON, a v2 body of the wrong shape) with 400 and every error
as ``{"error": message}``, like kserve's own."""

import json
import re
import time
from collections.abc import Callable

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from serving import prometheus_metrics as metrics

V1_PREDICT = re.compile(r"^/v1/models/[^/]+:predict$")
FEEDBACK = re.compile(r"^/v1/models/[^/]+:feedback$")
EXPLAIN = re.compile(r"^/v1/models/[^/]+:explain$")
V2_INFER = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")
JSON_TYPES = ("application/json", "application/cloudevents+json", "application/ld+json")
V2_BINARY_TYPE = "application/octet-stream"  # the v2 binary tensor extension


def protocol_of(method: str, path: str) -> str | None:
    """``v1`` or ``v2`` for an inference request, ``feedback`` for live labels, ``explain`` for
    explanations, else None."""
    if method != "POST":
        return None
    if V1_PREDICT.match(path):
        return "v1"
    if FEEDBACK.match(path):
        return "feedback"
    if EXPLAIN.match(path):
        return "explain"
    return "v2" if V2_INFER.match(path) else None


class InferenceGuard:
    """Guards and measures inference requests; every other route passes through untouched."""

    def __init__(self, app, max_body_bytes: int, model_version: Callable[[], str]):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.model_version = model_version

    async def __call__(self, scope, receive, send):
        protocol = (
            protocol_of(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        )
        if protocol is None:
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), {"code": 500}

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            problem = self._content_type_problem(scope, protocol)
            if problem:
                return await reject(send_and_record, 415, problem)
            body = await self._read_body(receive)
            if body is None:
                return await reject(
                    send_and_record, 413, f"request body over the limit of {self.max_body_bytes} bytes"
                )
            return await self.app(json_by_default(scope), _replay(body, receive), send_and_record)
        finally:
            if protocol in ("v1", "v2"):  # sentiment_requests_total counts inference only
                self._record(protocol, str(status["code"]), time.perf_counter() - started)

    def _record(self, protocol: str, code: str, seconds: float) -> None:
        version = self.model_version()
        metrics.REQUESTS.labels(protocol=protocol, model_version=version, code=code).inc()
        metrics.REQUEST_DURATION.labels(protocol=protocol, model_version=version).observe(seconds)

    def _content_type_problem(self, scope, protocol: str) -> str | None:
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        allowed = JSON_TYPES + ((V2_BINARY_TYPE,) if protocol == "v2" else ())
        if content_type and content_type not in allowed:
            return f"unsupported Content-Type {content_type!r}: send JSON with Content-Type: application/json"
        return None

    async def _read_body(self, receive) -> bytes | None:
        """The whole request body, or None as soon as it passes the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def json_by_default(scope) -> dict:
    """``scope`` with ``Content-Type: application/json`` when the request names no type and carries no
    binary tensors (no ``Inference-Header-Content-Length``): a JSON body, as Triton reads it and as
    tritonclient sends it; kserve alone would take the body for binary tensors."""
    names = {name for name, _ in scope.get("headers", [])}
    if b"content-type" in names or b"inference-header-content-length" in names:
        return scope
    return scope | {"headers": [*scope.get("headers", []), (b"content-type", b"application/json")]}


def _replay(body: bytes, receive):
    """A ``receive`` that hands the app the body read here, then listens to the client as before."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def reject(send, status: int, message: str, extra_headers: tuple = ()) -> None:
    """Answer ``status`` with ``{"error": message}``, before the app sees the request."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def invalid_body_handler(_request, exc: RequestValidationError) -> JSONResponse:
    """400 ``{"error": "invalid request body: <where>: <what>; ..."}`` (FastAPI's default is a 422)."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return JSONResponse(status_code=400, content={"error": f"invalid request body: {problems}"})


async def http_error_handler(_request, exc: HTTPException) -> JSONResponse:
    """FastAPI's own HTTP errors (e.g. a body it cannot decode) as ``{"error": ...}``, like kserve's."""
    return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers)
