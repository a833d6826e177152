"""The suite's predictors (``python -m serving``) and registries (``mlflow server``) without the imports
every one of them repeats: each is forked from a process that has imported scikit-learn, MLflow, pandas
and FastAPI once (multiprocessing's forkserver, as ``gunicorn --preload`` forks its workers), then runs
its module as ``python -m`` would, with its own arguments, environment, working directory and log. That
saves about 2 s of CPU a start (a TF-IDF predictor needed about 4 s to get ready).

KServe itself is not preloaded (its dependencies are): ``kserve.model_server`` reads ``sys.argv`` at
import, so each predictor imports it with its own arguments, as a fresh interpreter does. ``mlflow
server`` still starts its uvicorn process as a new interpreter. ``make serve``, ``make pipeline-run`` and
the entry-point tests start real interpreters."""

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.counting import count

REPO = Path(__file__).resolve().parent.parent

# Imported once in the forkserver: what every predictor and registry imports (gRPC and the Kubernetes
# client are KServe's; importing either starts no thread), except KServe itself and the model libraries
# only some predictors need (torch, sentence-transformers, ONNX Runtime).
PRELOAD = [
    "numpy",
    "pandas",
    "sklearn.calibration",
    "sklearn.feature_extraction.text",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.svm",
    "joblib",
    "mlflow.pyfunc",
    "mlflow.cli",
    "mlflow.server",
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "httpx",
    "grpc",
    "kubernetes.client",
    "kubernetes.config",
]


FORKSERVER = multiprocessing.get_context("forkserver")  # started by the first fork, once per process
FORKSERVER.set_forkserver_preload(PRELOAD)


def _run_module(module: str, argv: list[str], env: dict[str, str], cwd: str, log_path: str) -> None:
    """In the forked process: become ``python -m <module> <argv>`` in a session of its own (so that its
    process group can be signalled), writing to ``log_path``."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # TMPDIR as the environment says
    sys.path.insert(0, cwd)  # python -m puts the working directory first
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # multiprocessing ends its children with os._exit: run what exit would


class ForkedProcess:
    """What the tests use of ``subprocess.Popen`` (pid, poll, wait, returncode), for a forked process."""

    def __init__(self, process: multiprocessing.process.BaseProcess, args: list[str]):
        self.process = process
        self.pid = process.pid
        self.args = args

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.process.exitcode


def start_module(
    module: str, argv: list[str], env: dict[str, str], log_path: Path, counted_as: str
) -> ForkedProcess:
    """``python -m <module> <argv>`` in the repository root with exactly ``env``, its output to
    ``log_path``; counted in the run's record as ``counted_as``."""
    count(counted_as)
    process = FORKSERVER.Process(
        target=_run_module, args=(module, argv, env, str(REPO), str(log_path)), name=module
    )
    process.start()
    return ForkedProcess(process, [module, *argv])


def start_serving(argv: list[str], env: dict[str, str], log_path: Path) -> ForkedProcess:
    """``python -m serving <argv>``: a predictor."""
    return start_module("serving", argv, env, log_path, "predictor processes")
