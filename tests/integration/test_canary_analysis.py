"""The canary analysis proven with real parts: six real predictor processes serve six registered versions
(the stable v1; equally good v2 and v5; v3 calling every neutral text positive; v4 failing a quarter of its
requests with 5xx; v6 swapping negative and positive, the test-only models of tests/canary_models.py), a
load generator plays the Gateway (90 % stable / 10 % canary) and, where a case says so, the clients that
post each answer's true label to :feedback; a real Prometheus scrapes them all (labels as the PodMonitor
sets them) and a real Pushgateway takes the verdicts. The analysis then decides against that Prometheus,
and its Kubernetes calls go to the stand-in API server (tests/kube_stand_in.py):

- too little canary traffic (v5) -> wait (no call);
- the equal canary (v2), labelled -> promote (route to 100 %, then the InferenceService patch);
- the shifted class mix (v3) -> rollback; the 5xx canary (v4) -> rollback (route first, then the patch);
- the swapped canary (v6), whose traffic checks all pass -> rollback on its labels;
- ``python -m rollout.canary_analysis --once`` (make analyze) on v5 with params.yaml's settings -> wait.

Each case judges a canary version of its own, so the cases pass alone and in any order on one fleet.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import mlflow
import numpy as np
import pytest

from pipelines.params import PipelineParams
from rollout.canary_analysis import (
    PROMOTE,
    ROLLBACK,
    WAIT,
    AnalysisSettings,
    analyze_canary,
    run_analysis,
)
from rollout.canary_checks import FAIL, INSUFFICIENT, PASS
from rollout.deploy import PRODUCTION_ALIAS, Cluster, DeployError, Registry, rollout
from rollout.inference_service import ServingSettings, inference_service
from rollout.prometheus import Prometheus
from tests import canary_models
from tests.helpers import (
    HTTP,
    sentiment_frame,
    start_model_server,
    start_prometheus,
    start_pushgateway,
    stop_processes,
)
from tests.kube_stand_in import StandInApiServer
from tests.registry import RegistryServer

NAMESPACE, MODEL = "mlops", "sentiment"
VERSIONS = "123456"
# Small and fast: 40 requests per version, 1 s intervals. The p99 of ~50 requests is their slowest one,
# which one scheduling hiccup of four predictors on two cores moves by a whole histogram bucket (0.1 ->
# 0.25 s), so the latency tolerance is wide here; tests/unit/rollout/test_canary_checks.py tests the
# latency rule.
DEFAULTS = asdict(PipelineParams.load().canary_analysis)  # params.yaml's
TEST_CONFIG = {
    "window": "10m",
    "interval_seconds": 1,
    "timeout_seconds": 5,
    "required_passes": 2,
    "min_requests": 40,
    "on_timeout": "wait",
    "latency_slack_seconds": 0.5,
    "min_labels": 40,
}


@pytest.fixture(scope="module")
def fleet(fast_champion_registry: RegistryServer, tmp_path_factory):
    """The registry (a copy of the TF-IDF champion's, with v1..v6), the six predictors, Prometheus and
    the Pushgateway; yields a dict of them."""
    root = tmp_path_factory.mktemp("canary")
    registry = fast_champion_registry.copy(root)
    tracking_uri = registry.url
    processes = [registry.process]
    try:
        mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient()
        first = client.get_model_version(MODEL, "1")
        mlflow.register_model(first.source, MODEL, tags=first.tags)  # v2: the same model, same verdicts
        mlflow.set_experiment(experiment_id=client.create_experiment("canary-models"))
        assert canary_models.register(canary_models.NeutralAsPositive(), "models:/sentiment/1", MODEL) == "3"
        assert canary_models.register(canary_models.FailsOneInFour(), "models:/sentiment/1", MODEL) == "4"
        mlflow.register_model(first.source, MODEL, tags=first.tags)  # v5: the same again, for the wait case
        assert canary_models.register(canary_models.SwapsPolarity(), "models:/sentiment/1", MODEL) == "6"
        with ThreadPoolExecutor(5) as pool:
            started = list(
                pool.map(
                    lambda v: start_model_server(
                        tracking_uri,
                        root / f"predictor-v{v}.log",
                        # FP32 throughout: the test-only models run version 1's model in FP32 inside,
                        # so every version's latency is like for like
                        extra_args=("--model_uri", f"models:/sentiment/{v}", "--runtime", "fp32"),
                    ),
                    VERSIONS,
                )
            )
        processes += [process for process, _, _ in started]
        urls = {version: url for version, (_, url, _) in zip(VERSIONS, started, strict=True)}
        push, push_address = start_pushgateway(root)
        processes.append(push)
        labels = {"namespace": NAMESPACE, "model": MODEL}  # what the PodMonitor's relabeling adds
        targets = [{"targets": [url.removeprefix("http://")], "labels": labels} for url in urls.values()]
        pushed = {
            "job_name": "pushgateway",
            "honor_labels": True,
            "static_configs": [{"targets": [push_address]}],
        }
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "mlops/sentiment-predictor", "static_configs": targets}, pushed],
        }
        prometheus_process, prometheus_url = start_prometheus(config, root)
        processes.append(prometheus_process)
        prometheus = Prometheus(prometheus_url)
        wait_until(prometheus, "count(up == 1)", lambda value: value == len(VERSIONS) + 1)
        yield {
            "root": root,
            "tracking_uri": tracking_uri,
            "urls": urls,
            "prometheus": prometheus,
            "pushgateway": push_address,
        }
    finally:
        stop_processes(processes)


def wait_until(prometheus: Prometheus, expr: str, accept, timeout_s: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        values = [value for _, value in prometheus.query(expr)]
        if values and accept(values[0]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{expr} never satisfied the check")


def send_traffic(
    fleet: dict, canary: str, requests: int, canary_every: int, seed: int, labelled: bool = False
) -> None:
    """``requests`` single-text v1 requests, every ``canary_every``-th to the canary, the rest to v1, four at
    a time (the Gateway's split); with ``labelled``, each answer's true label posted back to the version
    that answered; then wait until Prometheus has scraped them all."""
    frame = sentiment_frame()
    rows = np.random.default_rng(seed).choice(len(frame), size=requests)
    texts, truth = frame["text"].iloc[rows].tolist(), frame["label"].iloc[rows].tolist()
    targets = [fleet["urls"][canary if i % canary_every == 0 else "1"] for i in range(requests)]

    def call(request: tuple[str, str, str]) -> int:
        url, text, label = request
        answer = HTTP.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [text]}, timeout=30)
        if labelled and answer.status_code == 200:
            row = {"id": answer.json()["predictions"][0]["id"], "label": label}
            HTTP.post(f"{url}/v1/models/{MODEL}:feedback", json=[row], timeout=30).raise_for_status()
        return answer.status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(call, zip(targets, texts, truth, strict=True)))
    assert set(codes) <= {200, 500}
    for version in ("1", canary):
        answered = sum(1 for t in targets if t == fleet["urls"][version])
        wait_until(
            fleet["prometheus"],
            f'sum(sentiment_requests_total{{model_version="{version}"}})',
            lambda value, n=answered: value >= n,
        )
        if labelled:
            wait_until(
                fleet["prometheus"],
                f'sum(sentiment_live_labels_total{{model_version="{version}"}})',
                lambda value, n=answered: value >= n,
            )


def judge(fleet: dict, canary: str) -> tuple[dict, list[tuple[str, str]]]:
    """Deploy v1 with ``canary`` at 10 % on a stand-in cluster, run the analysis and act on it; return the
    verdict, the Kubernetes writes it made and the stand-in."""
    settings = AnalysisSettings.from_config(
        {**DEFAULTS, **TEST_CONFIG, "prometheus_url": fleet["prometheus"].url},
        NAMESPACE,
        MODEL,
    )
    serving = ServingSettings(image="sentiment-mlops-serve:test", bundle_root=str(fleet["root"] / "bundles"))
    api = StandInApiServer()
    cluster = Cluster(api.api_client, poll_seconds=0.01)
    mlflow.set_tracking_uri(fleet["tracking_uri"])
    registry = Registry(MODEL)
    rollout(cluster, registry, serving, "1", canary_percent=0)
    rollout(cluster, registry, serving, canary, canary_percent=10)
    before = len(api.requests)
    verdict = run_analysis(settings, cluster, registry, serving, fleet["tracking_uri"], fleet["pushgateway"])
    writes = [(method, path.rsplit("/", 2)[-2]) for method, path in api.calls()[before:] if method != "GET"]
    print(json.dumps(verdict.as_dict()))  # the proof's figures (pytest -s shows them)
    api.stop()
    return verdict.as_dict(), writes


def checks(verdict: dict) -> dict[str, dict]:
    return {check["name"]: check for check in verdict["checks"]}


def test_too_little_canary_traffic_waits(fleet) -> None:
    send_traffic(fleet, "5", requests=250, canary_every=50, seed=1)
    verdict, writes = judge(fleet, "5")
    # it looked again and again until the timeout (5 s of 1 s intervals: 4 to 6 looks, by machine speed)
    assert verdict["decision"] == WAIT and writes == [] and verdict["intervals"] >= 3
    assert {c["outcome"] for c in verdict["checks"]} == {INSUFFICIENT}
    assert verdict["evidence"]["5"]["requests"] < 40 <= verdict["evidence"]["1"]["requests"]
    tags = mlflow.MlflowClient(fleet["tracking_uri"]).get_model_version(MODEL, "5").tags
    assert tags["canary.verdict"] == WAIT and tags["canary.stable_version"] == "1"


def test_an_equally_good_canary_is_promoted(fleet) -> None:
    send_traffic(fleet, "2", requests=500, canary_every=10, seed=2, labelled=True)
    verdict, writes = judge(fleet, "2")
    assert verdict["decision"] == PROMOTE, verdict["reason"]
    assert {c["outcome"] for c in verdict["checks"]} == {PASS} and verdict["consecutive_passes"] == 2
    assert checks(verdict)["class_mix"]["p_value"] > 0.01
    assert verdict["evidence"]["2"]["requests"] >= 40 and verdict["evidence"]["2"]["errors"] == 0
    assert checks(verdict)["live_quality"]["p_value"] is not None  # judged on its labels
    # sized as the stable one (and Ready), then the route, then promote; the old predictor's HPA goes last
    assert writes == [
        ("PATCH", "inferenceservices"),
        ("PATCH", "httproutes"),
        ("PATCH", "inferenceservices"),
        ("DELETE", "horizontalpodautoscalers"),
    ]
    aliases = mlflow.MlflowClient(fleet["tracking_uri"]).get_registered_model(MODEL).aliases
    assert str(aliases[PRODUCTION_ALIAS]) == "2" and str(aliases["champion"]) == "1"


def test_a_canary_with_a_shifted_class_mix_is_rolled_back(fleet) -> None:
    send_traffic(fleet, "3", requests=500, canary_every=10, seed=3)
    verdict, writes = judge(fleet, "3")
    assert verdict["decision"] == ROLLBACK and "class_mix failed" in verdict["reason"]
    # far below the per-look alpha (0.01 / 21); the exact p-value moves with the stable version's counts,
    # which every case's traffic adds to (1.008e-6 in one order, below 1e-6 in others)
    assert checks(verdict)["class_mix"]["outcome"] == FAIL and checks(verdict)["class_mix"]["p_value"] < 1e-4
    assert checks(verdict)["errors"]["outcome"] == PASS
    assert verdict["evidence"]["3"]["class_counts"]["neutral"] == 0
    assert writes == [("PATCH", "httproutes"), ("PATCH", "inferenceservices")]  # route first, then remove
    aliases = mlflow.MlflowClient(fleet["tracking_uri"]).get_registered_model(MODEL).aliases
    assert str(aliases[PRODUCTION_ALIAS]) == "1" and "canary" not in aliases


def test_a_canary_its_labels_prove_wrong_is_rolled_back_though_its_traffic_looks_right(fleet) -> None:
    send_traffic(fleet, "6", requests=500, canary_every=10, seed=6, labelled=True)
    verdict, writes = judge(fleet, "6")
    assert verdict["decision"] == ROLLBACK and "live_quality failed" in verdict["reason"], verdict["reason"]
    outcomes = {name: check["outcome"] for name, check in checks(verdict).items()}
    assert outcomes == {"errors": PASS, "latency": PASS, "class_mix": PASS, "confidence": PASS} | {
        "live_quality": FAIL
    }
    assert checks(verdict)["live_quality"]["statistic"] < -0.5  # macro recall far below the stable one's
    labels = verdict["evidence"]["6"]["labels"]
    assert sum(n for row in labels.values() for n in row.values()) >= 40
    assert writes == [("PATCH", "httproutes"), ("PATCH", "inferenceservices")]


def test_a_canary_failing_requests_is_rolled_back(fleet) -> None:
    send_traffic(fleet, "4", requests=500, canary_every=10, seed=4)
    verdict, writes = judge(fleet, "4")
    assert verdict["decision"] == ROLLBACK and "errors failed" in verdict["reason"]
    errors = checks(verdict)["errors"]
    assert errors["outcome"] == FAIL and errors["p_value"] < 1e-4 and errors["statistic"] > 0.1
    assert verdict["evidence"]["4"]["errors"] >= 5 and verdict["evidence"]["1"]["errors"] == 0
    assert writes == [("PATCH", "httproutes"), ("PATCH", "inferenceservices")]
    tags = mlflow.MlflowClient(fleet["tracking_uri"]).get_model_version(MODEL, "4").tags
    assert tags["canary.verdict"] == ROLLBACK and "errors failed" in tags["canary.reason"]
    runs = mlflow.search_runs(
        experiment_names=["sentiment-canary"], filter_string="tags.canary_version = '4'"
    )  # the verdict's run, named by the tag on the version
    assert runs["tags.canary.verdict"].tolist() == [ROLLBACK]
    assert runs["run_id"].tolist() == [tags["canary.analysis_run"]]
    # the last verdict, through the Pushgateway, in Prometheus (the Pipeline dashboard's panels)
    wait_until(
        fleet["prometheus"],
        'sentiment_canary_verdict{verdict="rollback", canary_version="4"}',
        lambda value: value == 1,
    )
    wait_until(fleet["prometheus"], 'sentiment_canary_check_passed{check="errors"}', lambda value: value == 0)


def quick_settings(prometheus_url: str, **overrides) -> AnalysisSettings:
    config = {**DEFAULTS, **TEST_CONFIG, "prometheus_url": prometheus_url}
    return AnalysisSettings.from_config({**config, **overrides}, NAMESPACE, MODEL)


def test_an_unreachable_prometheus_is_an_interval_without_evidence() -> None:
    settings = quick_settings("http://127.0.0.1:9", timeout_seconds=0, on_timeout="rollback")
    verdict = analyze_canary(Prometheus(settings.prometheus_url), settings, "1", "2")
    assert verdict.decision == ROLLBACK and verdict.intervals == 1  # the configured verdict on timeout
    assert [(c.name, c.outcome) for c in verdict.checks] == [("prometheus", INSUFFICIENT)]
    assert "did not answer" in verdict.reason


def test_settings_are_checked_and_alpha_is_split_over_the_looks() -> None:
    with pytest.raises(ValueError, match="on_timeout must be promote, rollback or wait"):
        quick_settings("http://127.0.0.1:9", on_timeout="promte")
    with pytest.raises(ValueError, match="min_requests"):
        quick_settings("http://127.0.0.1:9", min_requests=0)
    defaults = AnalysisSettings.from_config(DEFAULTS, NAMESPACE, MODEL)
    assert defaults.looks == 7  # 1,800 s / 300 s + the first
    assert defaults.per_look_thresholds().alpha == pytest.approx(defaults.thresholds.alpha / 21)


def test_there_is_nothing_to_analyse_without_a_canary() -> None:
    api = StandInApiServer()
    try:
        serving = ServingSettings(image="sentiment-mlops-serve:test", name="sentiment")
        Cluster(api.api_client).create(inference_service(serving, "1", "s3://mlflow/serving/sentiment/1"))
        with pytest.raises(DeployError, match="has no canary to analyse"):
            run_analysis(
                quick_settings("http://127.0.0.1:9"), Cluster(api.api_client), None, serving, None, ""
            )
    finally:
        api.stop()


def test_the_analysis_command_judges_one_interval_and_only_reports(fleet, tmp_path) -> None:
    """``python -m rollout.canary_analysis --once`` as make analyze runs it, its kubeconfig pointing at the
    stand-in API (v1 serving, v5 a 10 % canary), on the fleet's Prometheus with params.yaml's settings:
    v5's few requests are too few for params.yaml's min_requests, so it reports wait and changes nothing."""
    import subprocess
    import sys

    api = StandInApiServer()
    try:
        serving = ServingSettings(image="sentiment-mlops-serve:test", bundle_root=str(tmp_path / "bundles"))
        mlflow.set_tracking_uri(fleet["tracking_uri"])
        cluster = Cluster(api.api_client, poll_seconds=0.01)
        rollout(cluster, Registry(MODEL), serving, "1", canary_percent=0)
        rollout(cluster, Registry(MODEL), serving, "5", canary_percent=10)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "stand-in", "cluster": {"server": api.api_client.configuration.host}}
                    ],
                    "users": [{"name": "user", "user": {}}],
                    "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "user"}}],
                    "current-context": "stand-in",
                }
            )
        )
        before = len(api.requests)
        command = [sys.executable, "-m", "rollout.canary_analysis", "--once", "--prometheus"]
        command += [fleet["prometheus"].url, "--tracking-uri", fleet["tracking_uri"]]
        done = subprocess.run(
            [*command, "--pushgateway", fleet["pushgateway"]],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        verdict = json.loads(done.stdout[done.stdout.index("{") :])
        assert (verdict["stable_version"], verdict["canary_version"], verdict["decision"]) == ("1", "5", WAIT)
        assert {c["outcome"] for c in verdict["checks"]} == {INSUFFICIENT}
        assert verdict["evidence"]["5"]["requests"] < PipelineParams.load().canary_analysis.min_requests
        assert {method for method, _ in api.calls()[before:]} == {"GET"}  # --once only reports
        tags = mlflow.MlflowClient(fleet["tracking_uri"]).get_model_version(MODEL, "5").tags
        assert tags["canary.verdict"] == WAIT
    finally:
        api.stop()
