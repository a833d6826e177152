"""The production registry, run for real in tests: moto_server as S3, and ``mlflow server`` with a sqlite
backend whose artifacts it proxies to S3 (``--artifacts-destination s3://…``), as on the cluster (MinIO).
Clients reach artifacts only through the server, as the predictor and the steps do there."""

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow

from tests.helpers import VENV_BIN, free_port, start_process, stop_process, wait_for_http
from tests.preloaded import start_module

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def start_s3(log_path: Path) -> tuple[subprocess.Popen, str]:
    """moto_server on a free port; return (process, "127.0.0.1:<port>")."""
    port = free_port()
    process = start_process([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_path)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", process, timeout_s=60)
    except Exception:
        stop_process(process)
        raise
    return process, f"127.0.0.1:{port}"


def s3_client(s3_endpoint: str | None = None):
    """A MinIO client of the moto_server at ``s3_endpoint`` (default: AWS_ENDPOINT_URL's): a second S3
    client, independent of the product's core/storage.py, to put what a test needs and check what the
    product wrote."""
    from minio import Minio

    endpoint = s3_endpoint or os.environ["AWS_ENDPOINT_URL"].removeprefix("http://")
    return Minio(endpoint, *S3_CREDENTIALS.values(), secure=False)


def make_bucket(s3_endpoint: str, bucket: str) -> None:
    s3_client(s3_endpoint).make_bucket(bucket)


@functools.cache
def migrated_store() -> Path:
    """An empty MLflow sqlite store with every migration applied, made once per process (removed at
    exit): a new registry starts from a copy rather than running every migration itself."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="mlflow-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # the Default experiment's artifacts go where a fresh server's would: through the server, to S3
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", "mlflow-artifacts:/").engine.dispose()
    return folder / "mlflow.db"


def sqlite_store(path: Path) -> str:
    """A new MLflow sqlite store at ``path``, a copy of :func:`migrated_store`; its URI."""
    shutil.copy(migrated_store(), path)
    return f"sqlite:///{path}"


class RegistryServer:
    """``mlflow server`` (forked with its imports done: tests/preloaded.py) on a free port over
    ``root / "mlflow.db"`` (a copy of ``backend`` when given, else of :func:`migrated_store`), artifacts
    in ``s3://<bucket>/artifacts`` on ``s3_endpoint``. ``stop`` and ``start`` take it down and
    bring it back on the same port with the same store."""

    def __init__(self, root: Path, s3_endpoint: str, bucket: str, backend: Path | None = None):
        self.root, self.s3_endpoint, self.bucket = root, s3_endpoint, bucket
        self.backend = root / "mlflow.db"
        shutil.copy(backend or migrated_store(), self.backend)
        self.store = f"sqlite:///{self.backend}"  # the server's own store, for changes made while it is down
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.start()

    def start(self) -> None:
        endpoint = f"http://{self.s3_endpoint}"
        self.process = start_module(
            "mlflow",
            [
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                self.store,
                "--artifacts-destination",
                f"s3://{self.bucket}/artifacts",
                "--workers",
                "1",
            ],
            # no job runner: MLflow 3's server otherwise starts six huey consumers (250 MB each, polling)
            # for GenAI jobs the registry never runs, and a session keeps several registries up
            env={
                **os.environ,
                "MLFLOW_S3_ENDPOINT_URL": endpoint,
                "AWS_ENDPOINT_URL": endpoint,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                **S3_CREDENTIALS,
            },
            log_path=self.root / "mlflow-server.log",
            counted_as="mlflow servers",
        )
        try:
            wait_for_http(f"{self.url}/health", self.process, timeout_s=120)
        except Exception:
            stop_process(self.process)
            raise

    def stop(self) -> None:
        stop_process(self.process)

    def copy(self, root: Path) -> "RegistryServer":
        """Another server over a copy of this one's store (the same artifacts): a registry of its own."""
        return RegistryServer(root, self.s3_endpoint, self.bucket, backend=self.backend)

    def clear(self) -> None:
        """Delete every registered model (with its versions and aliases) and every run (deleted runs are
        out of every search, as for a fresh store); experiments stay."""
        client = mlflow.MlflowClient(self.url)
        for model in client.search_registered_models():
            client.delete_registered_model(model.name)
        experiments = [e.experiment_id for e in client.search_experiments()]
        for run in client.search_runs(experiments, max_results=50000):
            client.delete_run(run.info.run_id)
