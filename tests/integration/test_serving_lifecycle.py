"""The predictor's model lifecycle on real servers: it moves to the version the ``champion`` alias points
at (by polling, or on the v2 repository load call) while serving traffic, without a failed request; and
loading retries with backoff before giving up."""

import logging
import time
from pathlib import Path

import mlflow
import pytest

from serving import prometheus_metrics as metrics
from serving.predictor import SentimentPredictor, ServingOptions
from tests.helpers import (
    HTTP,
    metric_value,
    scrape_metrics,
    start_model_server,
    stop_process,
)
from tests.traffic import V1, ClosedLoopClients


@pytest.fixture(scope="module")
def registry_of_two(fast_champion_registry, tmp_path_factory) -> str:
    """A registry of this module's own (a copy of the TF-IDF champion's store): version 1 and version 2
    (the same model registered again). Returns its URL."""
    server = fast_champion_registry.copy(tmp_path_factory.mktemp("lifecycle-registry"))
    mlflow.set_tracking_uri(server.url)
    first = mlflow.MlflowClient(server.url).get_model_version("sentiment", "1")
    assert str(mlflow.register_model(first.source, "sentiment", tags=first.tags).version) == "2"
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def on_request_server(registry_of_two: str, tmp_path_factory):
    """A predictor that reloads only when asked (the repository load call)."""
    process, url, _ = start_model_server(
        registry_of_two, tmp_path_factory.mktemp("on-request") / "on-request.log"
    )
    yield url
    stop_process(process)


@pytest.fixture
def two_versions(registry_of_two: str) -> str:
    """:func:`registry_of_two` with ``champion`` -> 1, as each test starts. Returns its URL."""
    mlflow.MlflowClient(registry_of_two).set_registered_model_alias("sentiment", "champion", "1")
    return registry_of_two


@pytest.fixture
def on_request(two_versions: str, on_request_server: str) -> str:
    """:func:`on_request_server`, serving version 1 as each test starts."""
    response = HTTP.post(f"{on_request_server}/v2/repository/models/sentiment/load", timeout=120)
    assert response.status_code == 200, response.text
    assert HTTP.post(f"{on_request_server}{V1}", json={"instances": ["hi"]}).json()["model_version"] == "1"
    return on_request_server


@pytest.fixture
def polling(two_versions: str, tmp_path):
    """A predictor on the same registry that polls the alias every 0.5 s, its temporary files in
    ``tmp_path / "tmp"``."""
    (tmp_path / "tmp").mkdir()
    process, url, _ = start_model_server(
        two_versions,
        tmp_path / "polling.log",
        extra_args=("--reload_interval_seconds", "0.5"),
        env={"TMPDIR": str(tmp_path / "tmp")},
    )
    yield url
    stop_process(process)


def downloaded_models(folder: Path) -> list[str]:
    """The MLflow model folders under ``folder`` (each holds an ``MLmodel`` file), relative to it."""
    return sorted(path.parent.relative_to(folder).as_posix() for path in folder.rglob("MLmodel"))


def test_polling_predictor_follows_the_alias_without_a_failed_request(
    two_versions: str, polling: str, on_request: str, tmp_path: Path
) -> None:
    client = mlflow.MlflowClient(two_versions)
    with ClosedLoopClients(polling) as polled, ClosedLoopClients(on_request) as asked:
        polled.wait_for(5, version="1")
        assert len(downloaded_models(tmp_path / "tmp")) == 1  # version 1's, in the predictor's folder
        client.set_registered_model_alias("sentiment", "champion", "2")
        polled.wait_for(5, version="2")
        time.sleep(1)  # two more polling periods: the other server must not have moved
    # only the served version's download is left on its disk (MLflow's own download folders stay forever)
    (kept,) = downloaded_models(tmp_path / "tmp")
    assert kept.startswith("sentiment-models-") and "/v2-" in kept, kept
    assert set(polled.answers) == {(200, "1"), (200, "2")} and not polled.failures and not polled.refused
    assert set(asked.answers) == {(200, "1")} and not asked.failures and not asked.refused
    samples = scrape_metrics(polling)
    assert metric_value(samples, "sentiment_model_loads_total", outcome="success") == 2
    info = {"name": "sentiment", "flavour": "linear", "runtime": "fp32"}
    assert metric_value(samples, "sentiment_model_info", version="2", **info) == 1
    assert metric_value(samples, "sentiment_model_info", version="1", **info) == 0


def test_repository_load_call_moves_to_the_alias_without_a_failed_request(
    two_versions: str, on_request: str
) -> None:
    url = on_request
    with ClosedLoopClients(url) as traffic:
        traffic.wait_for(5, version="1")
        mlflow.MlflowClient(two_versions).set_registered_model_alias("sentiment", "champion", "2")
        time.sleep(0.5)
        assert HTTP.post(f"{url}{V1}", json={"instances": ["hi"]}).json()["model_version"] == "1"
        response = HTTP.post(f"{url}/v2/repository/models/sentiment/load", timeout=120)
        assert response.status_code == 200, response.text
        assert HTTP.post(f"{url}{V1}", json={"instances": ["hi"]}).json()["model_version"] == "2"
        traffic.wait_for(5, version="2")
    assert set(traffic.answers) == {(200, "1"), (200, "2")} and not traffic.failures and not traffic.refused
    unknown = HTTP.post(f"{url}/v2/repository/models/other/load")  # kserve answers every failed load 503
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
