"""A stand-in Kubernetes API server, the one mock in this project (no API server can run here): an HTTP
server on loopback that keeps custom objects (InferenceServices, HTTPRoutes) in a dict, applies JSON
merge patches (RFC 7386) as the API server does for ``application/merge-patch+json``, refuses what KServe
v0.20.0's admission webhook refuses (tests/kserve_admission.py), plays KServe's controller by writing the
status it would report (Ready, CanaryPredictorReady, canaryStatuses) and the stable predictor's HPA (which,
like KServe, it never deletes), lists and deletes HPAs, and records every request. The
client is the real ``kubernetes`` one, so tests see the exact paths, content types and bodies.
"""

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from kubernetes import client

from tests.kserve_admission import admission_errors

OBJECT_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/[^/]+/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/?]+)(/(?P<name>[^/?]+))?"
    r"(\?labelSelector=(?P<selector>[^&]+))?"
)
HPAS, ISVCS = "horizontalpodautoscalers", "inferenceservices"
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


def predictor_autoscaler(isvc: dict) -> dict:
    """The HPA KServe's raw reconciler writes for the stable predictor (reconcilers/hpa/hpa_reconciler.go),
    named and labelled as the predictor's Deployment."""
    name = f"{isvc['metadata']['name']}-{isvc['spec']['predictor']['name']}-predictor"
    predictor = isvc["spec"]["predictor"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": isvc["metadata"]["namespace"],
            "labels": {
                "serving.kserve.io/inferenceservice": isvc["metadata"]["name"],
                "component": "predictor",
            },
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": predictor.get("minReplicas", 1),
            "maxReplicas": predictor.get("maxReplicas", 1),
        },
    }


def selected(obj: dict, selector: str) -> bool:
    """Whether ``obj``'s labels match an equality label selector (``a=b,c=d``)."""
    labels = obj["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in unquote(selector).split(",")))


class StandInApiServer:
    """GET, POST (create) and PATCH of namespaced custom objects, with KServe's admission and status."""

    def __init__(self, ready: bool | Callable[[dict], bool] = True):
        """``ready``: whether KServe reports what it reconciled Ready, or a function of the InferenceService
        saying so; read on every GET, as the controller keeps reconciling."""
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
                if self.command == "GET" and match["name"] is None:  # a list, by label selector
                    items = [o for (p, _), o in stand_in.objects.items() if p == plural]
                    items = [o for o in items if match["selector"] is None or selected(o, match["selector"])]
                    return self.answer(200, {"kind": "List", "metadata": {}, "items": items})
                name = match["name"] or (body or {}).get("metadata", {}).get("name")
                current = stand_in.objects.get((plural, name))
                if self.command == "DELETE":
                    if stand_in.objects.pop((plural, name), None) is None:
                        return self.refuse(404, "NotFound", f'{plural} "{name}" not found')
                    return self.answer(200, {"kind": "Status", "status": "Success"})
                if self.command == "GET":
                    if current is None:
                        return self.refuse(404, "NotFound", f'{plural} "{name}" not found')
                    return self.answer(200, stand_in.reconciled(current) if plural == ISVCS else current)
                if self.command == "POST" and current is not None:
                    return self.refuse(409, "AlreadyExists", f'{plural} "{name}" already exists')
                if self.command == "PATCH" and current is None:
                    return self.refuse(404, "NotFound", f'{plural} "{name}" not found')
                new = body if self.command == "POST" else merge_patch(current, body)
                if plural == ISVCS:
                    errors = admission_errors(current, new)
                    if errors:
                        return self.refuse(400, "BadRequest", WEBHOOK + "; ".join(errors))
                    new = stand_in.reconciled(new)
                    hpa = predictor_autoscaler(new)
                    stand_in.objects[(HPAS, hpa["metadata"]["name"])] = hpa
                stand_in.objects[(plural, name)] = new
                self.answer(201 if self.command == "POST" else 200, new)

            do_GET = do_POST = do_PATCH = do_DELETE = handle_request

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # polls for shutdown every 10 ms (socketserver's default, 0.5 s, is what stop() would wait)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()
        self.api_client = client.ApiClient(
            client.Configuration(host=f"http://127.0.0.1:{self.server.server_port}")
        )

    def reconciled(self, isvc: dict) -> dict:
        """``isvc`` with the status KServe reports for it now."""
        ready = self.ready(isvc) if callable(self.ready) else self.ready
        return {**isvc, "status": kserve_status(isvc, ready)}

    def calls(self) -> list[tuple[str, str]]:
        """(method, path without the common prefix) of every request so far."""
        return [
            (method, re.sub(r"^/apis/[^/]+/[^/]+/namespaces/[^/]+/", "", path))
            for method, path, _, _ in self.requests
        ]

    def isvc(self, name: str = "sentiment") -> dict:
        return self.objects[(ISVCS, name)]

    def route(self, name: str = "sentiment") -> dict:
        return self.objects[("httproutes", name)]

    def autoscalers(self) -> list[str]:
        return sorted(name for plural, name in self.objects if plural == HPAS)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
