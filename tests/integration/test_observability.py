"""Observability proven on a real Prometheus (Debian's package, on loopback): the real predictor serves
the champion while this test drives traffic (good requests, malformed ones, then a shifted input
distribution), the gate's decision is pushed to a real Pushgateway, and Prometheus scrapes both. Then
every dashboard panel query must parse and return data, every alert expression must parse, the drift
gauge must stay low before the shift and rise after it, and the drift alert must go pending.

kube-state-metrics needs a Kubernetes API server, which cannot run here: a stand-in HTTP endpoint serves
the two replica series the Serving dashboard reads, in kube-state-metrics' own names and labels.
"""

import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from core.decisions import GateDecision
from monitoring.dashboards import DASHBOARDS
from monitoring.drift import SIGNIFICANT_PSI
from monitoring.pushgateway import push_gate_metrics
from rollout.canary_checks import CheckResult, VersionEvidence
from rollout.canary_report import CanaryVerdict, push_verdict
from tests.helpers import (
    HTTP,
    REPO,
    binary,
    free_port,
    start_model_server,
    start_prometheus,
    start_pushgateway,
    stop_processes,
    write_splits,
)

RULES = REPO / "monitoring" / "alerts.rules.yml"
NAMESPACE, MODEL = "mlops", "sentiment"
# Dashboard variables as a user would pick them; Grafana's $__rate_interval as it would compute it.
VARIABLES = {"$namespace": NAMESPACE, "$model": MODEL, "$version": ".*", "$__rate_interval": "1m"}
LONG_RANT = " and another thing that went wrong with it, which nobody at the company ever answered" * 4
KUBE_STATE_METRICS = f"""\
# TYPE kube_deployment_status_replicas_available gauge
kube_deployment_status_replicas_available{{namespace="{NAMESPACE}",deployment="{MODEL}-v1-predictor"}} 2
# TYPE kube_horizontalpodautoscaler_status_desired_replicas gauge
kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{NAMESPACE}",\
horizontalpodautoscaler="{MODEL}-v1-predictor"}} 2
"""


class KubeStateMetricsStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = KUBE_STATE_METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


# A canary analysis' verdict as the analyze step pushes it (the Pipeline dashboard's canary panels).
CANARY_VERDICT = CanaryVerdict(
    "promote",
    "every check passed for 3 consecutive intervals",
    MODEL,
    "1",
    "2",
    3,
    3,
    [CheckResult("errors", "pass", 0.0, 1.0, ""), CheckResult("class_mix", "pass", 1.2, 0.55, "")],
    {
        v: VersionEvidence(v, n, 0, 0.05, {"negative": n // 2, "positive": n // 2}, 0.8)
        for v, n in (("1", 900), ("2", 100))
    },
)


def scrape_config(predictor: str, pushgateway: str, kube_state_metrics: str) -> dict:
    """What kube-prometheus-stack's PodMonitor / ServiceMonitors produce, as static targets: the predictor
    with the namespace and model labels the PodMonitor's relabeling adds."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "mlops/sentiment-predictor",
                "static_configs": [
                    {"targets": [predictor], "labels": {"namespace": NAMESPACE, "model": MODEL}}
                ],
            },
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pushgateway]}]},
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "static_configs": [{"targets": [kube_state_metrics]}],
            },
        ],
    }


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str) -> dict:
        """The API's answer (status, data or error) to an instant query."""
        return HTTP.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()

    def values(self, expr: str) -> dict[str, float]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return {
            json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in answer["data"]["result"]
        }

    def wait_for(self, expr: str, accept, timeout_s: float = 60) -> dict[str, float]:
        deadline = time.monotonic() + timeout_s
        while True:
            values = self.values(expr)
            if values and accept(values):
                return values
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} never satisfied the check; last value {values}")
            time.sleep(0.2)


def push_decision(tracking_uri: str, pushgateway: str) -> None:
    """The gate's decision for the champion's run (a candidate scored against a previous champion)."""
    mlflow.set_tracking_uri(tracking_uri)
    run_id = mlflow.MlflowClient().get_model_version_by_alias(MODEL, "champion").run_id
    decision = GateDecision(
        promoted=True,
        reason="beat the champion",
        metric="macro_recall",
        weights={"test": 1.0},
        run_id=run_id,
        candidate_score=0.81,
        candidate_scores={run_id: 0.81},
        candidate_set_scores={run_id: {"test": 0.81}},
        champion_score=0.74,
        champion_version="1",
        interval=(0.03, 0.11),
        confidence=0.95,
        registered_version="2",
        int8_loss=None,
        int8_accepted=False,
    )
    push_gate_metrics(pushgateway, MODEL, decision, {run_id: "linear-embeddings"})


def predict(url: str, texts: list[str]) -> list[str]:
    """Send ``texts`` 10 per request; return their answers' ids."""
    ids = []
    for start in range(0, len(texts), 10):
        answer = HTTP.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": texts[start : start + 10]})
        assert answer.status_code == 200, answer.text
        ids += [p["id"] for p in answer.json()["predictions"]]
    return ids


def post_feedback(url: str, ids: list[str], labels: list[str]) -> None:
    for start in range(0, len(ids), 100):
        rows = [
            {"id": i, "label": x}
            for i, x in zip(ids[start : start + 100], labels[start : start + 100], strict=True)
        ]
        answer = HTTP.post(f"{url}/v1/models/{MODEL}:feedback", json=rows)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def observed(champion_store: str, tmp_path_factory):
    """Everything running and scraped, traffic driven in two phases; yields (Prometheus, drift before the
    shift, drift after it, the config file)."""
    root = tmp_path_factory.mktemp("observability")
    processes = []
    stand_in = ThreadingHTTPServer(("127.0.0.1", free_port()), KubeStateMetricsStandIn)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    try:
        server, url, _ = start_model_server(
            champion_store,
            root / "predictor.log",
            extra_args=(
                "--drift_window",
                "300",
                "--drift_min_texts",
                "100",
                "--prediction_log",
                str(root / "predictions"),
                "--prediction_log_sample",
                "1.0",
            ),
        )
        processes.append(server)
        push, push_address = start_pushgateway(root)
        processes.append(push)
        push_decision(champion_store, push_address)
        push_verdict(push_address, CANARY_VERDICT)
        targets = (url.removeprefix("http://"), push_address, f"127.0.0.1:{stand_in.server_port}")
        prom, prom_url = start_prometheus(scrape_config(*targets), root)
        processes.append(prom)
        config = root / "prometheus.yml"
        prometheus = Prometheus(prom_url)
        prometheus.wait_for("up", lambda v: len(v) == 3 and all(x == 1 for x in v.values()))

        test = pd.read_parquet(write_splits(root, seed=2)["test"])  # the reference's texts
        rng = np.random.default_rng(0)
        rows = rng.choice(len(test), size=300)
        same = test["text"].iloc[rows].tolist()
        post_feedback(url, predict(url, same), test["label"].iloc[rows].tolist())
        for bad in ({"instances": "not a list"}, {"wrong": []}):
            assert HTTP.post(f"{url}/v1/models/{MODEL}:predict", json=bad).status_code == 400
        window_full = lambda v: max(v.values()) >= 300  # noqa: E731
        prometheus.wait_for("sentiment_drift_window_texts", window_full)
        before = prometheus.wait_for("sentiment_drift_psi", lambda v: len(v) == 3)
        predict(url, [text + LONG_RANT for text in same])
        after = prometheus.wait_for(
            'sentiment_drift_psi{feature="input_length"}', lambda v: max(v.values()) > SIGNIFICANT_PSI
        )
        yield prometheus, before, after, config
    finally:
        stop_processes(processes)
        stand_in.shutdown()


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every target of every panel, rows included."""
    found = []
    for name, build in DASHBOARDS.items():
        panels = build()["panels"]
        for panel in panels + [p for row in panels for p in row.get("panels", [])]:
            found += [(name, panel["title"], target["expr"]) for target in panel.get("targets", [])]
    return found


def substitute(expr: str) -> str:
    for variable, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def test_promtool_accepts_the_config_and_rules(observed) -> None:
    _, _, _, config = observed
    checked = subprocess.run(
        [binary("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout + checked.stderr, (
        checked.stdout + checked.stderr
    )


def test_every_dashboard_query_returns_data(observed) -> None:
    prometheus = observed[0]
    queries = panel_queries()
    assert len(queries) >= 30
    empty = [
        (board, title, expr) for board, title, expr in queries if not prometheus.values(substitute(expr))
    ]
    assert not empty, "panels whose query returns nothing:\n" + "\n".join(map(str, empty))


def test_every_dashboard_variable_has_values(observed) -> None:
    prometheus = observed[0]
    for build in DASHBOARDS.values():
        for variable in build()["templating"]["list"]:
            if variable["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"]).groups()
            answer = HTTP.get(
                f"{prometheus.url}/api/v1/label/{label}/values", params={"match[]": substitute(metric)}
            ).json()
            assert answer["status"] == "success" and answer["data"], (variable["name"], answer)


def test_every_alert_expression_parses_and_every_rule_is_healthy(observed) -> None:
    """Every alert and recording rule parses as a query, is loaded and evaluates without error."""
    prometheus = observed[0]
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    for rule in rules:
        assert prometheus.query(rule["expr"])["status"] == "success", rule
    groups = HTTP.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in loaded} == {r.get("alert") or r["record"] for r in rules}
    assert all(r["health"] == "ok" for r in loaded), [(r["name"], r.get("lastError")) for r in loaded]


def test_drift_stays_low_until_the_inputs_shift_then_alerts(observed) -> None:
    """Before the shift no feature drifted; after it, the drift alert is pending (for: 15m) on exactly
    the features past the rule's threshold: the texts' length among them, the predicted class not."""
    prometheus, before, _, _ = observed
    assert len(before) == 3 and max(before.values()) < 0.1, before
    alerts = prometheus.wait_for(
        'ALERTS{alertname="SentimentInputDrift"}', lambda v: len(v) >= 1, timeout_s=20
    )
    labels = [json.loads(key) for key in alerts]
    psi = {
        json.loads(key)["feature"]: value for key, value in prometheus.values("sentiment_drift_psi").items()
    }
    assert {a["feature"] for a in labels} == {feature for feature, value in psi.items() if value > 0.25}, psi
    alerting = {a["feature"] for a in labels}
    assert "input_length" in alerting and psi["predicted_class"] < 0.25  # both sides of the rule are seen
    assert {(a["alertstate"], a["model"]) for a in labels} == {("pending", MODEL)}


def test_the_pipeline_metrics_came_through_the_pushgateway(observed) -> None:
    prometheus = observed[0]
    assert prometheus.values(
        'sentiment_pipeline_gate_promoted{model="sentiment", family="linear-embeddings"}'
    )
    interval = prometheus.values('sentiment_pipeline_gate_gain_interval{model="sentiment"}')
    assert sorted(interval.values()) == [0.03, 0.11]
    assert list(prometheus.values('sentiment_pipeline_champion_version{model="sentiment"}').values()) == [2]
