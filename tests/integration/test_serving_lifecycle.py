"""The predictor's model lifecycle on real servers: it moves to the version the ``champion`` alias points
at (by polling, or on the v2 repository load call) while serving traffic, without a failed request; and
loading retries with backoff before giving up."""

import logging
import threading
import time
from collections import Counter

import httpx
import mlflow
import pytest

from components.train_linear import train_linear_model
from core.tracking import ensure_experiment
from serving import prometheus_metrics as metrics
from serving.predictor import SentimentPredictor, ServingOptions
from tests.helpers import (
    linear_config,
    metric_value,
    run_config,
    scrape_metrics,
    start_model_server,
    stop_process,
    write_splits,
)

V1 = "/v1/models/sentiment:predict"


@pytest.fixture
def two_versions(tmp_path) -> str:
    """A store of its own for each test, with two registered TF-IDF models (versions 1 and 2); ``champion``
    points at 1."""
    root = tmp_path / "two-versions"
    root.mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ensure_experiment(uri, "sentiment", (root / "mlartifacts").as_uri())
    paths = write_splits(root, seed=3)
    for c in (1.0, 0.1):
        config = linear_config(c=c)
        trained = train_linear_model(
            paths["train"], paths["validation"], "tfidf", config, run_config(), uri, {}
        )
        mlflow.register_model(trained.model_uri, "sentiment")
    mlflow.MlflowClient(uri).set_registered_model_alias("sentiment", "champion", "1")
    return uri


@pytest.fixture
def on_request(two_versions: str, tmp_path):
    """A predictor that reloads only when asked (the repository load call)."""
    process, url, _ = start_model_server(two_versions, tmp_path / "on-request.log")
    yield url
    stop_process(process)


@pytest.fixture
def polling(two_versions: str, tmp_path):
    """A predictor on the same registry that polls the alias every 0.5 s."""
    process, url, _ = start_model_server(
        two_versions, tmp_path / "polling.log", extra_args=("--reload_interval_seconds", "0.5")
    )
    yield url
    stop_process(process)


class Traffic:
    """Four client threads sending v1 requests non-stop; records each answer's status and version."""

    def __init__(self, url: str):
        self.url, self.answers, self.errors = url, Counter(), []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(4)]

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stopping.is_set():
                try:
                    response = client.post(V1, json={"instances": ["I love the new phone!"]})
                    version = response.json().get("model_version") if response.status_code == 200 else None
                    self.answers[(response.status_code, version)] += 1
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def wait_for(self, version: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.answers[(200, version)] < 5:
            assert time.monotonic() < deadline, f"no answers from version {version}: {self.answers}"
            time.sleep(0.1)

    def __enter__(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_polling_predictor_follows_the_alias_without_a_failed_request(
    two_versions: str, polling: str, on_request: str
) -> None:
    client = mlflow.MlflowClient(two_versions)
    with Traffic(polling) as polled, Traffic(on_request) as asked:
        polled.wait_for("1")
        client.set_registered_model_alias("sentiment", "champion", "2")
        polled.wait_for("2")
        time.sleep(1)  # two more polling periods: the other server must not have moved
    assert set(polled.answers) == {(200, "1"), (200, "2")} and not polled.errors
    assert set(asked.answers) == {(200, "1")} and not asked.errors
    samples = scrape_metrics(polling)
    assert metric_value(samples, "sentiment_model_loads_total", outcome="success") == 2
    info = {"name": "sentiment", "flavour": "linear", "runtime": "fp32"}
    assert metric_value(samples, "sentiment_model_info", version="2", **info) == 1
    assert metric_value(samples, "sentiment_model_info", version="1", **info) == 0


def test_repository_load_call_moves_to_the_alias_without_a_failed_request(
    two_versions: str, on_request: str
) -> None:
    url = on_request
    with Traffic(url) as traffic:
        traffic.wait_for("1")
        mlflow.MlflowClient(two_versions).set_registered_model_alias("sentiment", "champion", "2")
        time.sleep(0.5)
        assert httpx.post(f"{url}{V1}", json={"instances": ["hi"]}).json()["model_version"] == "1"
        response = httpx.post(f"{url}/v2/repository/models/sentiment/load", timeout=120)
        assert response.status_code == 200, response.text
        assert httpx.post(f"{url}{V1}", json={"instances": ["hi"]}).json()["model_version"] == "2"
        traffic.wait_for("2")
    assert set(traffic.answers) == {(200, "1"), (200, "2")} and not traffic.errors
    unknown = httpx.post(f"{url}/v2/repository/models/other/load")  # kserve answers every failed load 503
    assert unknown.status_code == 503 and "'other' is not served here" in unknown.json()["error"]


def test_loading_retries_with_backoff_then_fails_clearly(tmp_path, caplog) -> None:
    """A model that cannot be loaded: ``load_attempts`` tries, a warning per retry, then the error."""
    failures = metrics.MODEL_LOADS.labels(outcome="failure")._value.get()
    options = ServingOptions(load_attempts=3, load_backoff_seconds=0.01)
    model = SentimentPredictor("sentiment", str(tmp_path / "no-model-here"), options)
    with (
        caplog.at_level(logging.WARNING, logger="serving.predictor"),
        pytest.raises(Exception, match="no-model"),
    ):
        model.load()
    assert not model.ready
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2 and "attempt 1 of 3" in retries[0] and "attempt 2 of 3" in retries[1]
    assert metrics.MODEL_LOADS.labels(outcome="failure")._value.get() == failures + 3
