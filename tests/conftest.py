"""Shared fixtures: real MLflow stores and servers, kfp.local, and the data sets in ../shared."""

import os
import sys
from pathlib import Path

import pytest

from core.tracking import ensure_experiment
from tests.helpers import (
    PARAMS,
    SHARED_DATA,
    free_port,
    gate_config,
    linear_config,
    run_config,
    shared_absent,
    start_model_server,
    start_process,
    stop_process,
    wait_for_http,
    write_splits,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def shared_dataset(relative: str) -> Path:
    """A data set from ../shared/data; skip where it is absent (a fresh user checkout), fail in CI."""
    path = SHARED_DATA / relative
    if not path.exists():
        shared_absent(
            path, "the ../shared data sets exist only in this project's CI and development machines"
        )
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh sqlite-backed MLflow store with the 'sentiment' experiment."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_experiment(uri, "sentiment", (tmp_path / "mlartifacts").as_uri())
    return uri


@pytest.fixture
def kfp_local(tmp_path: Path, monkeypatch) -> Path:
    """kfp.local with the SubprocessRunner in this environment (no venv, no network)."""
    from kfp import local

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    root = tmp_path / "kfp"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real MLflow tracking server (sqlite backend, proxied artifact store) on a free port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = start_process(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        root / "server.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, timeout_s=120)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def s3_endpoint(tmp_path: Path, monkeypatch) -> str:
    """A real S3 API (moto_server) on a free port, with credentials in the environment."""
    port = free_port()
    process = start_process(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        tmp_path / "moto.log",
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", process, timeout_s=60)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


SERVER_LIMITS = {"max_instances": 16, "max_text_chars": 500, "max_body_bytes": 65536}


def register_champion(root: Path, featurizer: str, embedding_reference: bool) -> str:
    """A sqlite MLflow store in ``root`` whose ``sentiment@champion`` (version 1) came through the real
    train_linear (``featurizer``) -> embedding_reference (when asked) -> evaluate -> gate steps."""
    from components.embedding_reference import save_embedding_reference
    from components.evaluate import evaluate_model
    from components.gate import gate_candidates
    from components.train_linear import train_linear_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    ensure_experiment(uri, "sentiment", (root / "mlartifacts").as_uri())
    paths = write_splits(root, seed=2)
    trained = train_linear_model(
        paths["train"], paths["validation"], featurizer, linear_config(), run_config(), uri, {}
    )
    reference = None
    if embedding_reference:  # what the pipeline's embedding_reference step writes
        reference = str(root / "embedding_reference.npz")
        save_embedding_reference(paths["train"], reference, PARAMS.monitor.encoder_id, 2000, seed=0)
    evaluation = evaluate_model(
        trained.run_id, trained.model_uri, paths["test"], uri, embedding_reference_path=reference
    )
    decision = gate_candidates(
        [evaluation.candidate], paths["test"], None, gate_config(), run_config(seed=0), uri
    )
    assert decision.promoted
    return uri


@pytest.fixture(scope="session")
def champion_store(tmp_path_factory) -> str:
    """A store whose champion is the embeddings linear model, with the embedding drift reference."""
    return register_champion(tmp_path_factory.mktemp("champion"), "embeddings", embedding_reference=True)


@pytest.fixture(scope="session")
def fast_champion_store(tmp_path_factory) -> str:
    """A store whose champion is the TF-IDF linear model (thousands of texts a second on 2 cores), for
    tests about clients rather than models."""
    return register_champion(tmp_path_factory.mktemp("fast-champion"), "tfidf", embedding_reference=False)


@pytest.fixture(scope="session")
def model_server(champion_store: str, tmp_path_factory):
    """``python -m serving`` on the champion store, with small request limits (SERVER_LIMITS) and a
    20 ms batching window; yields (http_url, grpc_address)."""
    limits = [arg for key, value in SERVER_LIMITS.items() for arg in (f"--{key}", str(value))]
    process, url, grpc_address = start_model_server(
        champion_store,
        tmp_path_factory.mktemp("server") / "server.log",
        extra_args=("--max_batch_wait_ms", "20", "--quality_min_labels", "10", *limits),
    )
    yield url, grpc_address
    stop_process(process)
