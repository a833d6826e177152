"""A stand-in Kubernetes API server, the one mock in this project (no API server can run here): an HTTP
server on loopback that keeps custom objects (InferenceServices, HTTPRoutes) in a dict, applies JSON
merge patches (RFC 7386) as the API server does for ``application/merge-patch+json``, refuses what KServe
v0.20.0's admission webhook refuses (tests/kserve_admission.py), plays KServe's controller by writing the
status it would report (Ready, CanaryPredictorReady, canaryStatuses), and records every request. The
client is the real ``kubernetes`` one, so tests see the exact paths, content types and bodies.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes import client

from tests.kserve_admission import admission_errors

OBJECT_PATH = re.compile(r"^/apis/[^/]+/[^/]+/namespaces/[^/]+/(?P<plural>[^/]+)(/(?P<name>[^/?]+))?")
WEBHOOK = 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '


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


def kserve_status(isvc: dict, ready: bool) -> dict:
    """What KServe's controller reports once it has reconciled ``isvc`` (components/predictor.go)."""
    canaries = isvc["spec"].get("canary") or []
    conditions = [{"type": "Ready", "status": str(ready)}]
    status = {"conditions": conditions}
    if canaries:
        conditions.append({"type": "CanaryPredictorReady", "status": str(ready)})
        status["canaryStatuses"] = [
            {"name": c["predictor"]["name"], "ready": ready, "trafficPercent": c["trafficPercent"]}
            for c in canaries
        ]
    return status


class StandInApiServer:
    """GET, POST (create) and PATCH of namespaced custom objects, with KServe's admission and status."""

    def __init__(self, ready: bool = True):
        self.objects: dict[tuple[str, str], dict] = {}  # (plural, name) -> object
        self.requests: list[tuple[str, str, str | None, dict | None]] = []
        self.ready = ready
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

            def refuse(self, code: int, reason: str, message: str) -> None:
                status = {"kind": "Status", "status": "Failure", "reason": reason, "message": message}
                self.answer(code, {**status, "code": code})

            def handle_request(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                stand_in.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))
                match = OBJECT_PATH.match(self.path)
                plural = match["plural"]
                name = match["name"] or (body or {}).get("metadata", {}).get("name")
                current = stand_in.objects.get((plural, name))
                if self.command == "GET":
                    if current is None:
                        return self.refuse(404, "NotFound", f'{plural} "{name}" not found')
                    return self.answer(200, current)
                if self.command == "POST" and current is not None:
                    return self.refuse(409, "AlreadyExists", f'{plural} "{name}" already exists')
                if self.command == "PATCH" and current is None:
                    return self.refuse(404, "NotFound", f'{plural} "{name}" not found')
                new = body if self.command == "POST" else merge_patch(current, body)
                if plural == "inferenceservices":
                    errors = admission_errors(current, new)
                    if errors:
                        return self.refuse(400, "BadRequest", WEBHOOK + "; ".join(errors))
                    new = {**new, "status": kserve_status(new, stand_in.ready)}
                stand_in.objects[(plural, name)] = new
                self.answer(201 if self.command == "POST" else 200, new)

            do_GET = do_POST = do_PATCH = handle_request

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.api_client = client.ApiClient(
            client.Configuration(host=f"http://127.0.0.1:{self.server.server_port}")
        )

    def calls(self) -> list[tuple[str, str]]:
        """(method, path without the common prefix) of every request so far."""
        return [
            (method, re.sub(r"^/apis/[^/]+/[^/]+/namespaces/[^/]+/", "", path))
            for method, path, _, _ in self.requests
        ]

    def isvc(self, name: str = "sentiment") -> dict:
        return self.objects[("inferenceservices", name)]

    def route(self, name: str = "sentiment") -> dict:
        return self.objects[("httproutes", name)]

    def stop(self) -> None:
        self.server.shutdown()
