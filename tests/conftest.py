"""Shared fixtures: the production registry (``mlflow server`` with artifacts in S3, tests/registry.py),
kfp.local, the model server, and the data sets in ../shared."""

import json
import multiprocessing.util
import os
import shutil
import tempfile
from pathlib import Path

# Two workers on two cores: each, and every process it starts, computes on one thread. Otherwise torch,
# OpenMP, the BLAS and the tokenizers each start a thread per core in every process and spin against
# each other. Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from core.tracking import ensure_experiment
from tests.helpers import (
    HTTP,
    PARAMS,
    SHARED_DATA,
    TINY,
    gate_config,
    linear_config,
    run_config,
    shared_absent,
    start_model_server,
    stop_process,
    train_transformer,
    write_splits,
)
from tests.registry import S3_CREDENTIALS, RegistryServer, make_bucket, start_s3

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
pytest_plugins = ["tests.run_record"]  # each test's time and peak memory, and what the suite started
REGISTRY_BUCKET = "mlflow"


# The session fixtures that cost the most to build: under pytest-xdist (pyproject: -n 2) every test that
# needs one runs on the same worker, so each is built once, and with it every other test of its module, so
# that the module's own fixtures are built once too. Other tests go by module. (xdist's own --dist
# loadgroup cannot do this with pytest 9.2: it renames items by setting ``_nodeid``, which pytest 9.2 no
# longer reads, so every test becomes a group of one.)
SHARED_BY_ONE_WORKER = {
    "champion_registry": "embeddings-champion",
    "fast_model_server": "embeddings-champion",  # the explain tests use both predictors
    "trained_transformer": "transformer",
}
# The workers take groups in this order, longest work first, so that no long group starts last: those
# above, then the real-server folders, then the rest.
LONG_FOLDERS = ("tests/integration/", "tests/model/", "tests/extension/", "tests/cluster/")
GROUPS_ENV = "SENTIMENT_TEST_GROUPS"  # where the workers write each test's group for the scheduler


def groups_of(items: list[pytest.Item]) -> dict[str, str]:
    """Each test's group (its node id -> the group): the shared fixture's group of the first fixture in
    SHARED_BY_ONE_WORKER that any test of its module takes, else its module's name."""
    module_group: dict[str, str] = {}
    for item in items:
        shared = [group for name, group in SHARED_BY_ONE_WORKER.items() if name in item.fixturenames]
        if shared:
            module_group.setdefault(item.module.__name__, shared[0])
    return {item.nodeid: module_group.get(item.module.__name__, item.module.__name__) for item in items}


def pytest_configure(config) -> None:
    # multiprocessing's folder (tests/preloaded.py's forkserver socket), fixed now in every process, never
    # in a test's temporary folder: a worker's inside the scratch folder below, which the workers inherit;
    # the controller's outside it (the scratch folder is removed before multiprocessing's at exit)
    multiprocessing.util.get_temp_dir()
    if not hasattr(config, "workerinput"):
        # Every process of the run (workers, servers, predictors) keeps its temporary files in one folder,
        # removed at the end: MLflow never removes a model it downloads for load_model, and earlier runs
        # had left 51 GB of them in /tmp.
        scratch = tempfile.mkdtemp(prefix="sentiment-tests-tmp-")
        config.add_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
        os.environ["TMPDIR"], tempfile.tempdir = scratch, None
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        folder = tempfile.mkdtemp(prefix="test-groups-")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        os.environ[GROUPS_ENV] = folder  # the workers inherit it


@pytest.hookimpl(tryfirst=True)  # after pytest-randomly's shuffle (a wrapper)
def pytest_collection_modifyitems(config, items) -> None:
    groups = groups_of(items)

    def rank(item: pytest.Item) -> int:
        if groups[item.nodeid] in SHARED_BY_ONE_WORKER.values():
            return 0
        return 1 if item.nodeid.startswith(LONG_FOLDERS) else 2

    items.sort(key=rank)  # stable: the seed's order within each rank
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get(GROUPS_ENV):
        (Path(os.environ[GROUPS_ENV]) / f"{worker}.json").write_text(json.dumps(groups))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Schedule by the groups the workers wrote (see SHARED_BY_ONE_WORKER), in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def __init__(self, config, log) -> None:
            super().__init__(config, log)
            self.groups: dict[str, str] = {}

        def _split_scope(self, nodeid: str) -> str:
            if not self.groups:
                for path in Path(os.environ[GROUPS_ENV]).glob("*.json"):
                    self.groups.update(json.loads(path.read_text()))
            return self.groups.get(nodeid, nodeid.split("::")[0])

    return GroupScheduling(config, log)


def shared_dataset(relative: str) -> Path:
    """A data set from ../shared/data; skip where it is absent (a fresh user checkout), fail in CI."""
    path = SHARED_DATA / relative
    if not path.exists():
        shared_absent(
            path, "the ../shared data sets exist only in this project's CI and development machines"
        )
    return path


@pytest.fixture(scope="session")
def registry_s3(tmp_path_factory) -> str:
    """The production registries' S3 (moto_server) for the session, bucket "mlflow"; its address."""
    process, endpoint = start_s3(tmp_path_factory.mktemp("registry-s3") / "moto.log")
    make_bucket(endpoint, REGISTRY_BUCKET)
    yield endpoint
    stop_process(process)


def registry_server(tmp_path_factory, registry_s3: str, name: str) -> RegistryServer:
    return RegistryServer(tmp_path_factory.mktemp(name), registry_s3, REGISTRY_BUCKET)


@pytest.fixture(scope="session")
def scratch_registry(tmp_path_factory, registry_s3: str) -> RegistryServer:
    server = registry_server(tmp_path_factory, registry_s3, "scratch-registry")
    yield server
    server.stop()


@pytest.fixture
def tracking_uri(scratch_registry: RegistryServer) -> str:
    """The production registry (``mlflow server``, artifacts in S3) with no registered model nor run, and
    the 'sentiment' experiment."""
    scratch_registry.clear()
    ensure_experiment(scratch_registry.url, "sentiment", None)
    return scratch_registry.url


@pytest.fixture
def kfp_local(tmp_path: Path, monkeypatch) -> Path:
    """kfp.local with the SubprocessRunner in this environment (no venv, no network)."""
    from kfp import local

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    root = tmp_path / "kfp"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, registry_s3: str) -> str:
    """An empty production registry of the session's own: ``mlflow server`` with artifacts in S3."""
    server = registry_server(tmp_path_factory, registry_s3, "mlflow-server")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def scratch_s3(tmp_path_factory) -> str:
    """A second moto_server for the session, emptied for each test that takes :func:`s3_endpoint` (the
    registries' S3 keeps its objects); its address."""
    process, endpoint = start_s3(tmp_path_factory.mktemp("scratch-s3") / "moto.log")
    yield endpoint
    stop_process(process)


def empty_s3(endpoint: str) -> None:
    """Delete every bucket and object of the moto_server at ``endpoint`` (moto's reset call)."""
    HTTP.post(f"http://{endpoint}/moto-api/reset", timeout=30).raise_for_status()


@pytest.fixture
def s3_endpoint(scratch_s3: str, monkeypatch) -> str:
    """A real S3 API (moto_server), empty for the test, with credentials in the environment."""
    empty_s3(scratch_s3)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{scratch_s3}")
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return scratch_s3


SERVER_LIMITS = {"max_instances": 16, "max_text_chars": 500, "max_body_bytes": 65536}


def register_champion(registry: RegistryServer, featurizer: str, embedding_reference: bool) -> str:
    """Make ``registry``'s ``sentiment@champion`` (version 1) through the real train_linear
    (``featurizer``) -> embedding_reference (when asked) -> evaluate -> gate steps; return its URL."""
    from components.embedding_reference import save_embedding_reference
    from components.evaluate import evaluate_model
    from components.gate import gate_candidates
    from components.train_linear import train_linear_model

    uri, root = registry.url, registry.root
    ensure_experiment(uri, "sentiment", None)
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


def champion_registry_of(tmp_path_factory, registry_s3: str, featurizer: str, embedding_reference: bool):
    """A production registry of its own whose champion :func:`register_champion` made; stopped after."""
    server = registry_server(tmp_path_factory, registry_s3, f"champion-{featurizer}")
    try:
        register_champion(server, featurizer, embedding_reference)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def champion_registry(tmp_path_factory, registry_s3: str) -> RegistryServer:
    """A production registry whose champion is the embeddings linear model, with the embedding drift
    reference. Tests that change a registry take a ``copy()``."""
    yield from champion_registry_of(tmp_path_factory, registry_s3, "embeddings", embedding_reference=True)


@pytest.fixture(scope="session")
def champion_store(champion_registry: RegistryServer) -> str:
    """The URL of :func:`champion_registry`."""
    return champion_registry.url


@pytest.fixture(scope="session")
def trained_transformer(tmp_path_factory, registry_s3: str):
    """The transformer step run once for the session: the bundled MiniLM fine-tuned for 24 steps (label
    smoothing 0.1) on :func:`write_splits` (seed 2), logged with its INT8 export to a registry of its own.
    The two-families gate test registers versions in it; the others only read its run. Yields (registry,
    the step's result, the splits)."""
    server = registry_server(tmp_path_factory, registry_s3, "transformer-registry")
    try:
        ensure_experiment(server.url, "sentiment", None)
        splits = write_splits(server.root, seed=2)
        result = train_transformer(
            splits["train"], splits["validation"], server.url, max_steps=24, label_smoothing=0.1, **TINY
        )
        yield server, result, splits
    finally:
        server.stop()


@pytest.fixture(scope="session")
def champion_model(champion_store: str):
    """:func:`champion_store`'s champion, loaded in this process once for the session (FP32): what the
    servers on that store must answer. Leaves the tracking URI at the store."""
    import mlflow

    mlflow.set_tracking_uri(champion_store)
    return mlflow.pyfunc.load_model("models:/sentiment@champion")


@pytest.fixture(scope="session")
def fast_champion_registry(tmp_path_factory, registry_s3: str) -> RegistryServer:
    """A production registry whose champion is the TF-IDF linear model (thousands of texts a second on 2
    cores, a few hundred KB of artifacts), for tests about clients and rollouts rather than models."""
    yield from champion_registry_of(tmp_path_factory, registry_s3, "tfidf", embedding_reference=False)


ADMIN_TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def fast_model_server(fast_champion_registry: RegistryServer, tmp_path_factory) -> str:
    """``python -m serving`` on the TF-IDF champion with ADMIN_TOKEN set (the state-changing routes need
    it), shared by the tests about clients, explanations and authorisation; its URL."""
    from serving.auth import TOKEN_ENV

    process, url, _ = start_model_server(
        fast_champion_registry.url,
        tmp_path_factory.mktemp("fast-server") / "server.log",
        env={TOKEN_ENV: ADMIN_TOKEN},
    )
    yield url
    stop_process(process)


@pytest.fixture(scope="session")
def fast_champion_store(fast_champion_registry: RegistryServer) -> str:
    """The URL of :func:`fast_champion_registry`."""
    return fast_champion_registry.url


@pytest.fixture(scope="session")
def model_server(champion_store: str, tmp_path_factory):
    """``python -m serving`` on the champion store, with small request limits (SERVER_LIMITS) and a
    20 ms batching window, in FP32: its answers equal the registered model's to 1e-6 however requests
    are batched (INT8 quantises activations per batch); yields (http_url, grpc_address)."""
    limits = [arg for key, value in SERVER_LIMITS.items() for arg in (f"--{key}", str(value))]
    process, url, grpc_address = start_model_server(
        champion_store,
        tmp_path_factory.mktemp("server") / "server.log",
        extra_args=("--max_batch_wait_ms", "20", "--runtime", "fp32", *limits),
    )
    yield url, grpc_address
    stop_process(process)
