"""The deploy step's calls to the Kubernetes API: create, canary, promote, roll back.

No API server can run here, so an in-test HTTP stand-in plays one (the one mock in this project): it keeps
InferenceServices in a dict, applies JSON merge patches (RFC 7386) as the API server does for
``application/merge-patch+json``, and records every request. The client is the real ``kubernetes`` one,
so the tests assert the exact paths, content types and bodies the real API would receive.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from components.deploy import (
    InferenceServices,
    ServingSettings,
    deploy_champion,
    inference_service,
    promote_patch,
    rollback_patch,
    rollout,
    served_model_uri,
    status,
)

COLLECTION = "/apis/serving.kserve.io/v1beta1/namespaces/mlops/inferenceservices"
SETTINGS = ServingSettings(image="sentiment-mlops-serve:abc123")


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class StandInApiServer:
    """Just enough of the Kubernetes API for InferenceServices: GET, POST (create) and PATCH."""

    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str | None, dict | None]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def record(self) -> dict | None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                stand_in.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))
                return body

            def do_GET(self):
                self.record()
                name = self.path.removeprefix(COLLECTION + "/")
                if name in stand_in.objects:
                    self.answer(200, stand_in.objects[name])
                else:
                    self.answer(404, {"kind": "Status", "reason": "NotFound", "code": 404})

            def do_POST(self):
                body = self.record()
                stand_in.objects[body["metadata"]["name"]] = body
                self.answer(201, body)

            def do_PATCH(self):
                body = self.record()
                name = self.path.removeprefix(COLLECTION + "/")
                stand_in.objects[name] = merge_patch(stand_in.objects[name], body)
                self.answer(200, stand_in.objects[name])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        configuration = client.Configuration(host=f"http://127.0.0.1:{self.server.server_port}")
        self.services = InferenceServices(client.ApiClient(configuration))

    def calls(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.requests]


@pytest.fixture
def api():
    stand_in = StandInApiServer()
    yield stand_in
    stand_in.server.shutdown()


def container_env(predictor: dict) -> dict:
    return {e["name"]: e.get("value") for e in predictor["containers"][0]["env"]}


def test_first_rollout_creates_the_inference_service(api) -> None:
    assert rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=10) == "created"
    assert api.calls() == [("GET", f"{COLLECTION}/sentiment"), ("POST", COLLECTION)]
    created = api.requests[1][3]
    built = inference_service(SETTINGS, "models:/sentiment/1")
    assert created == {**built, "spec": {"predictor": {**built["spec"]["predictor"], "name": "v1"}}}
    assert created["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert created["spec"]["predictor"]["containers"][0]["image"] == "sentiment-mlops-serve:abc123"
    assert container_env(created["spec"]["predictor"])["MODEL_URI"] == "models:/sentiment/1"
    assert rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=10) == "unchanged"
    assert api.calls()[2:] == [("GET", f"{COLLECTION}/sentiment")]


def test_canary_then_promote(api) -> None:
    rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=10)
    assert rollout(api.services, SETTINGS, "models:/sentiment/2", canary_percent=10) == "canary"
    method, path, content_type, body = api.requests[-1]
    assert (method, path, content_type) == (
        "PATCH",
        f"{COLLECTION}/sentiment",
        "application/merge-patch+json",
    )
    (canary,) = body["spec"]["canary"]
    assert canary["trafficPercent"] == 10 and canary["predictor"]["name"] == "v2"
    assert container_env(canary["predictor"])["MODEL_URI"] == "models:/sentiment/2"
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & set(canary["predictor"])
    assert list(body) == ["spec"] and list(body["spec"]) == ["canary"]  # the stable predictor is untouched

    live = api.objects["sentiment"]
    assert status(live)["serving"] == "models:/sentiment/1"
    assert status(live)["canary"] == [{"model_uri": "models:/sentiment/2", "percent": 10}]

    api.services.patch("sentiment", "mlops", promote_patch(live))
    method, path, content_type, body = api.requests[-1]
    assert body["spec"]["canary"] is None and body["spec"]["predictor"]["name"] == "v2"
    promoted = api.objects["sentiment"]["spec"]
    assert "canary" not in promoted and promoted["predictor"]["name"] == "v2"
    assert served_model_uri(promoted["predictor"]) == "models:/sentiment/2"
    assert promoted["predictor"]["minReplicas"] == 1 and promoted["predictor"]["maxReplicas"] == 4  # kept
    with pytest.raises(ValueError, match="no canary"):
        promote_patch(api.objects["sentiment"])


def test_canary_then_rollback(api) -> None:
    rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=10)
    rollout(api.services, SETTINGS, "models:/sentiment/2", canary_percent=25)
    api.services.patch("sentiment", "mlops", rollback_patch(api.objects["sentiment"]))
    assert api.requests[-1][3] == {"spec": {"canary": None}}
    spec = api.objects["sentiment"]["spec"]
    assert "canary" not in spec and served_model_uri(spec["predictor"]) == "models:/sentiment/1"
    with pytest.raises(ValueError, match="no canary"):
        rollback_patch(api.objects["sentiment"])


def test_rollout_without_canary_replaces_the_serving_version(api) -> None:
    rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=0)
    assert rollout(api.services, SETTINGS, "models:/sentiment/3", canary_percent=0) == "replaced"
    body = api.requests[-1][3]
    assert body["spec"]["canary"] is None and body["spec"]["predictor"]["name"] == "v3"
    assert served_model_uri(api.objects["sentiment"]["spec"]["predictor"]) == "models:/sentiment/3"


def test_rollout_refuses_an_alias_and_a_bad_share(api) -> None:
    with pytest.raises(ValueError, match="pinned version"):
        rollout(api.services, SETTINGS, "models:/sentiment@champion", canary_percent=0)
    rollout(api.services, SETTINGS, "models:/sentiment/1", canary_percent=0)
    with pytest.raises(ValueError, match="between 1 and 99"):
        rollout(api.services, SETTINGS, "models:/sentiment/2", canary_percent=100)


def test_local_deploy_step_writes_the_manifest_it_would_apply(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    manifest = tmp_path / "manifest.yaml"
    decision = {"promoted": True, "registered_version": "7", "reason": "beats the champion"}
    assert deploy_champion(decision, "sentiment", SETTINGS, 10, str(manifest)) == "manifest"
    written = yaml.safe_load(manifest.read_text())
    assert written["kind"] == "InferenceService" and written["spec"]["predictor"]["name"] == "v7"
    assert served_model_uri(written["spec"]["predictor"]) == "models:/sentiment/7"

    kept = {"promoted": False, "registered_version": None, "reason": "does not beat the champion"}
    assert deploy_champion(kept, "sentiment", SETTINGS, 10, str(manifest)) == "skipped"
    assert "does not beat the champion" in manifest.read_text()
