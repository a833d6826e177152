"""Faults injected into the production path with real processes: what users see when Kubernetes stops a
pod under load, when the registry or its object store stops answering, and when the prediction log's
S3 stalls."""

import os
import signal
import time
from pathlib import Path

import httpx
import mlflow
import pytest

from components.train_linear import train_linear_model
from tests.helpers import (
    HTTP,
    free_port,
    linear_config,
    metric_value,
    run_config,
    scrape_metrics,
    start_model_server,
    stop_process,
    wait_for_http,
    write_splits,
)
from tests.preloaded import ForkedProcess, start_serving
from tests.registry import S3_CREDENTIALS, RegistryServer, make_bucket, start_s3
from tests.traffic import V1, ClosedLoopClients


def test_sigterm_under_load_finishes_every_request_in_flight_then_exits(
    fast_champion_store, tmp_path
) -> None:
    """What Kubernetes sends on every rollout and scale-down. A 1 s batching window keeps the eight
    clients' requests in flight at the signal; each must get its answer."""
    process, url, _ = start_model_server(
        fast_champion_store, tmp_path / "server.log", extra_args=("--max_batch_wait_ms", "1000")
    )
    with ClosedLoopClients(url, count=8) as clients:
        clients.wait_for(16)
        time.sleep(0.5)  # the next requests are now halfway through their batching window
        answered_before = clients.answered()
        os.kill(process.pid, signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=60)
        exit_seconds = time.monotonic() - started
        time.sleep(0.5)  # the clients now find nobody listening
    log = (tmp_path / "server.log").read_text()
    assert clients.failures == [], (clients.failures[:5], log[-2000:])
    assert clients.answered() > answered_before, clients.answers  # those in flight at the signal: answered
    assert clients.refused > 0  # and new work was not taken
    assert process.returncode == 0, log[-2000:]
    assert exit_seconds < 30


@pytest.fixture(scope="module")
def stallable_s3(tmp_path_factory):
    """An S3 (moto_server) of this module's own, to stall; yields (process, address)."""
    process, endpoint = start_s3(tmp_path_factory.mktemp("stallable-s3") / "moto.log")
    make_bucket(endpoint, "mlflow")
    yield process, endpoint
    os.kill(process.pid, signal.SIGCONT)
    stop_process(process)


@pytest.fixture
def resumed_s3(stallable_s3):
    """:func:`stallable_s3`, answering again after the test whatever the test did to it."""
    yield stallable_s3
    os.kill(stallable_s3[0].pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def trained_registry(tmp_path_factory, stallable_s3) -> RegistryServer:
    """A registry of this module's own on :func:`stallable_s3` (artifacts in S3): two TF-IDF versions
    registered through it."""
    root = tmp_path_factory.mktemp("fault-registry")
    served = RegistryServer(root, stallable_s3[1], "mlflow")
    try:
        mlflow.set_tracking_uri(served.url)
        mlflow.set_experiment("sentiment")
        paths = write_splits(root, seed=5)
        for c in (1.0, 0.1):
            trained = train_linear_model(
                paths["train"], paths["validation"], "tfidf", linear_config(c=c), run_config(), served.url, {}
            )
            mlflow.register_model(trained.model_uri, "sentiment")
        yield served
    finally:
        served.stop()


@pytest.fixture
def registry(trained_registry: RegistryServer, resumed_s3) -> RegistryServer:
    """:func:`trained_registry` as each test starts: up, ``champion`` -> 1. A test may stop it or move the
    alias; the next one finds it up again."""
    if trained_registry.process.poll() is not None:
        trained_registry.start()
    mlflow.MlflowClient(trained_registry.url).set_registered_model_alias("sentiment", "champion", "1")
    yield trained_registry
    if trained_registry.process.poll() is not None:
        trained_registry.start()


# The predictor's MLflow client gives up on an unreachable server quickly; the predictor retries itself,
# here every half second to a second rather than 2, 4, 8 ... 60 s apart.
FAST_FAILING_MLFLOW = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
QUICK_LOAD_RETRIES = ("--load_backoff_seconds", "0.5", "--load_backoff_max_seconds", "1")


def served_version(url: str) -> str | None:
    try:
        response = HTTP.post(f"{url}{V1}", json={"instances": ["hello"]}, timeout=10)
    except httpx.HTTPError:
        return None
    return response.json()["model_version"] if response.status_code == 200 else None


def start_unready_predictor(tracking_uri: str, log_path: Path) -> tuple[ForkedProcess, str]:
    """``python -m serving`` on free ports, waited for until live (not ready); return (process, url)."""
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    process = start_serving(
        ["--http_port", str(http_port), "--grpc_port", str(free_port()), *QUICK_LOAD_RETRIES],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, **FAST_FAILING_MLFLOW},
        log_path=log_path,
    )
    wait_for_http(f"{url}/v2/health/live", process, timeout_s=120)
    return process, url


def assert_live_not_ready(url: str, process: ForkedProcess, seconds: float = 3) -> None:
    """For ``seconds``: not ready, every prediction answered 503, the process still running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert HTTP.get(f"{url}/v2/models/sentiment/ready").status_code == 503
        assert HTTP.post(f"{url}{V1}", json={"instances": ["hi"]}).status_code == 503
        assert process.poll() is None
        time.sleep(0.5)


def test_a_predictor_started_while_the_registry_is_down_is_live_not_ready_then_ready(
    registry: RegistryServer, tmp_path
) -> None:
    registry.stop()
    process, url = start_unready_predictor(registry.url, tmp_path / "server.log")
    try:
        assert_live_not_ready(url, process)
        registry.start()
        back = time.monotonic()
        wait_for_http(f"{url}/v2/models/sentiment/ready", process, timeout_s=90)
        print(f"ready {time.monotonic() - back:.1f} s after the registry came back")
        assert served_version(url) == "1"
        log = (tmp_path / "server.log").read_text()
        assert "retrying in" in log and "attempt 1 of unlimited" in log
        assert "Traceback" not in log  # a 503 per readiness probe is expected, not an error to log
    finally:
        stop_process(process)


def test_a_predictor_started_while_the_registry_s3_stalls_is_live_not_ready_then_ready(
    registry: RegistryServer, resumed_s3, tmp_path
) -> None:
    """The registry answers, its S3 does not (SIGSTOP): the model's files cannot come."""
    s3_process, _ = resumed_s3
    os.kill(s3_process.pid, signal.SIGSTOP)
    process, url = start_unready_predictor(registry.url, tmp_path / "server.log")
    try:
        assert_live_not_ready(url, process, seconds=5)
        os.kill(s3_process.pid, signal.SIGCONT)
        back = time.monotonic()
        wait_for_http(f"{url}/v2/models/sentiment/ready", process, timeout_s=90)
        print(f"ready {time.monotonic() - back:.1f} s after S3 came back")
        assert served_version(url) == "1"
    finally:
        stop_process(process)


def test_the_registry_down_while_the_alias_moves_fails_no_request_and_the_move_happens_when_it_returns(
    registry: RegistryServer, tmp_path
) -> None:
    process, url, _ = start_model_server(
        registry.url,
        tmp_path / "server.log",
        extra_args=("--reload_interval_seconds", "0.5"),
        env=FAST_FAILING_MLFLOW,
    )
    try:
        with ClosedLoopClients(url, count=4) as clients:
            clients.wait_for(20)
            registry.stop()
            # The alias moves in the registry's store while its server is down.
            mlflow.MlflowClient(registry.store).set_registered_model_alias("sentiment", "champion", "2")
            time.sleep(3)  # six polls fail; version 1 keeps answering
            assert served_version(url) == "1"
            registry.start()
            back = time.monotonic()
            deadline = back + 60
            while served_version(url) != "2":
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.2)
            print(f"serving version 2 {time.monotonic() - back:.1f} s after the registry came back")
        assert clients.failures == [], clients.failures[:5]
        assert clients.answered() > 20 and clients.refused == 0
        assert "reloading sentiment failed; still serving version 1" in (tmp_path / "server.log").read_text()
    finally:
        stop_process(process)


def test_a_stalled_s3_under_the_prediction_log_delays_no_request_drops_and_counts_then_resumes(
    fast_champion_store, resumed_s3, tmp_path
) -> None:
    """moto_server stopped with SIGSTOP: its socket accepts and never answers, as a stalled S3 does."""
    moto, s3_endpoint = resumed_s3
    if "predictions" not in {b.name for b in s3_client_of(s3_endpoint).list_buckets()}:
        make_bucket(s3_endpoint, "predictions")
    s3 = {"AWS_ENDPOINT_URL": f"http://{s3_endpoint}", **S3_CREDENTIALS}
    logging = ("--prediction_log", "s3://predictions/sentiment", "--prediction_log_sample", "1")
    writing = ("--prediction_log_flush_rows", "20", "--prediction_log_flush_seconds", "0.5")
    process, url, _ = start_model_server(
        fast_champion_store,
        tmp_path / "server.log",
        extra_args=(*logging, *writing, "--prediction_log_queue", "100"),
        env=s3,
    )

    def records(outcome: str) -> float:
        return metric_value(scrape_metrics(url), "sentiment_prediction_log_records_total", outcome=outcome)

    try:
        with ClosedLoopClients(url, count=4) as clients:
            clients.wait_for(100)
            wait_until_above(lambda: records("written"), 0)
            os.kill(moto.pid, signal.SIGSTOP)
            stalled_at = time.monotonic()
            written_at_stall = records("written")
            wait_until_above(lambda: records("dropped"), 0, timeout_s=30)  # the queue of 100 filled
            slowest_during_stall = clients.slowest_since(stalled_at)
            answered_during_stall = clients.answered()
            os.kill(moto.pid, signal.SIGCONT)
            wait_until_above(lambda: records("written"), written_at_stall + 20, timeout_s=60)
        assert clients.failures == [], clients.failures[:5]
        assert slowest_during_stall < 2.0  # no request waited for S3 (a blocked upload waits minutes)
        assert clients.answered() > answered_during_stall
    finally:
        stop_process(process)


def s3_client_of(endpoint: str):
    from minio import Minio

    return Minio(endpoint, *S3_CREDENTIALS.values(), secure=False)


def wait_until_above(value, floor: float, timeout_s: float = 30) -> float:
    deadline = time.monotonic() + timeout_s
    while (current := value()) <= floor:
        assert time.monotonic() < deadline, f"still {current} <= {floor} after {timeout_s} s"
        time.sleep(0.2)
    return current
