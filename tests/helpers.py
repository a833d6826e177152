"""Small real fixtures the tests write themselves, and helpers to run real servers on free ports."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pandas as pd

from components.gate import GateConfig
from components.train_linear import LinearConfig
from components.train_transformer import TransformerConfig
from core.config import RunConfig
from pipelines.params import DEFAULT_PARAMS_FILE, PipelineParams
from tests.preloaded import ForkedProcess, start_serving

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
VENV_BIN = Path(sys.executable).parent

PARAMS = PipelineParams.load()  # params.yaml
REQUIRE_SHARED = "REQUIRE_SHARED_DATA"  # set by .ci/run: a test that needs ../shared fails, never skips
# The tests' one HTTP client (thread-safe): httpx's top-level post/get build a client and its TLS context
# per call, about 24 ms of CPU each, where this one takes 0.1 ms. No kept-alive connections, so that every
# request opens its own, as the top-level calls do (a restarted server never meets a stale one).
HTTP = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))


def shared_absent(path: Path, what: str) -> None:
    """Skip the calling test because ``path`` (in ../shared) is absent, as on a user's fresh clone; fail
    it instead where REQUIRE_SHARED_DATA=1 (CI), so that nothing is skipped silently there."""
    import pytest

    message = f"{path} is absent: {what}"
    if os.environ.get(REQUIRE_SHARED) == "1":
        pytest.fail(f"{message}; CI ({REQUIRE_SHARED}=1) needs it")
    pytest.skip(message)


def run_config(**changes) -> RunConfig:
    """params.yaml's ``run`` section (experiment and model "sentiment", seed 42, macro_recall) with
    ``changes``."""
    return replace(PARAMS.run, **changes)


def linear_config(**changes) -> LinearConfig:
    """params.yaml's ``train_linear`` section with no Optuna trials (unless ``changes`` ask for some), then
    ``changes``."""
    return replace(PARAMS.train_linear, **{"trials": 0} | changes)


def transformer_config(**changes) -> TransformerConfig:
    """params.yaml's ``train_transformer`` section with a short schedule (learning rate 5e-5, 1 epoch, no
    step limit, 30 minutes), then ``changes``."""
    schedule = {"learning_rate": 5e-5, "epochs": 1.0, "max_steps": None, "max_minutes": 30.0}
    return replace(PARAMS.train_transformer, **schedule | changes)


# A small fine-tuning of the bundled MiniLM for the fixture's 72 training texts.
TINY = {"model_id": "all-MiniLM-L6-v2", "batch_size": 16, "learning_rate": 1e-4, "eval_steps": 8}


def train_transformer(train_path: str, validation_path: str, tracking_uri: str, **config):
    """The transformer step with :func:`transformer_config` and ``config``."""
    from components.train_transformer import train_transformer_model

    return train_transformer_model(
        train_path, validation_path, transformer_config(**config), run_config(), tracking_uri, {}
    )


def write_params(path: Path, **sections: dict) -> Path:
    """Write params.yaml to ``path`` with the values in ``sections`` (section name -> {key: value}) replacing
    those of the file; return ``path``."""
    import yaml

    values = yaml.safe_load(DEFAULT_PARAMS_FILE.read_text())
    for section, changes in sections.items():
        values[section] = values[section] | changes
    path.write_text(yaml.safe_dump(values))
    return path


def gate_config(**changes) -> GateConfig:
    """A gate with no margin, a floor of 0.4, the test split's score alone (weighted, no out-of-domain
    weight, target all: no guards) and the usual bootstrap (1,000 samples, 95 %) and INT8 tolerance
    (0.005), then ``changes``."""
    rules = {
        "min_improvement": 0.0,
        "min_score": 0.4,
        "confidence": 0.95,
        "bootstrap_samples": 1000,
        "score": "weighted",
        "ood_weight": 0.0,
        "int8_max_loss": 0.005,
        "target": "all",
        "guard_tolerance": 0.02,
    }
    return GateConfig(**rules | changes)


TOPICS = [
    "the new phone",
    "this movie",
    "the concert",
    "my flight",
    "the coffee",
    "the update",
    "the game last night",
    "their service",
    "the weather",
    "this book",
    "the hotel",
    "the album",
]
TEMPLATES = {
    "positive": [
        "I love {}!",
        "{} is amazing, best thing ever",
        "so happy with {} :)",
        "great job on {}, really wonderful",
    ],
    "negative": [
        "I hate {}.",
        "{} is terrible, worst thing ever",
        "so angry about {} :(",
        "awful experience with {}, really disappointing",
    ],
    "neutral": [
        "{} is scheduled for 5pm",
        "reading an article about {}",
        "the meeting about {} is on Tuesday",
        "{} will be released in May",
    ],
}


def sentiment_frame() -> pd.DataFrame:
    """144 short labelled texts, 48 per class, that a small model learns well."""
    rows = [
        (template.format(topic), label)
        for label, templates in TEMPLATES.items()
        for template in templates
        for topic in TOPICS
    ]
    return pd.DataFrame(rows, columns=["text", "label"])


def write_comment_sets(folder: Path) -> list[str]:
    """A Reddit-style CSV (clean_comment, category -1/0/1, with an empty text and a duplicate) and a
    YouTube-style CSV (Comment, Sentiment as words)."""
    reddit = folder / "reddit_sentiment"
    reddit.mkdir()
    comments = [f"comment number {i} about things" for i in range(30)]
    categories = [-1, 0, 1] * 10
    pd.DataFrame(
        {"clean_comment": [*comments, "  ", comments[0]], "category": [*categories, 0, categories[0]]}
    ).to_csv(reddit / "Reddit_Data.csv", index=False)
    youtube = folder / "YoutubeCommentsDataSet.csv"
    words = ["negative", "neutral", "positive"] * 4
    pd.DataFrame({"Comment": [f"video {i} was {w}" for i, w in enumerate(words)], "Sentiment": words}).to_csv(
        youtube, index=False
    )
    return [str(reddit), str(youtube)]


def write_splits(folder: Path, seed: int) -> dict[str, str]:
    """Split :func:`sentiment_frame` 72/36/36 (stratified, seeded) into parquet files; return their paths."""
    from components.preprocess import split_frame

    frame = sentiment_frame().assign(split=pd.Series(None, dtype="string"), source="sentiment")
    paths = {}
    for name, part in split_frame(frame, 0.25, 0.25, seed=seed, mix_exponent=1.0).items():
        paths[name] = str(folder / f"{name}.parquet")
        part.to_parquet(paths[name])
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen | ForkedProcess, timeout_s: float = 120) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was up")
        try:
            if HTTP.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout_s} s")


def start_process(args: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a server in its own process group, logging to ``log_path``."""
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen | ForkedProcess) -> None:
    """Stop a server and its children by process-group id."""
    stop_processes([process])


def stop_processes(processes: list[subprocess.Popen | ForkedProcess]) -> None:
    """Stop several servers at once: each process group is sent SIGTERM before any is waited for (each
    drains what it holds in flight), SIGKILL after 15 s."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_model_server(
    tracking_uri: str,
    log_path: Path,
    model_name: str = "sentiment",
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ports: tuple[int, int] | None = None,
):
    """Start ``python -m serving`` (plus ``extra_args`` and ``env``) on ``ports`` (HTTP, gRPC; free ports
    by default), forked with its common imports done (tests/preloaded.py); return (process, http_url,
    grpc_address)."""
    http_port, grpc_port = ports or (free_port(), free_port())
    process = start_serving(
        [
            "--model_name",
            model_name,
            "--http_port",
            str(http_port),
            "--grpc_port",
            str(grpc_port),
            "--workers",
            "1",
            *extra_args,
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, **(env or {})},
        log_path=log_path,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:  # the server listens before its model has loaded: wait for the model
        wait_for_http(f"{url}/v2/models/{model_name}/ready", process, timeout_s=180)
    except Exception as exc:
        stop_process(process)
        raise RuntimeError(f"model server failed to start; log:\n{log_path.read_text()[-3000:]}") from exc
    return process, url, f"127.0.0.1:{grpc_port}"


def scrape_metrics(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample on ``url``/metrics, keyed by (sample name, sorted label pairs)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = HTTP.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_value(samples: dict[tuple[str, tuple], float], sample: str, /, **labels: str) -> float:
    """One sample's value from :func:`scrape_metrics` (0 when the series does not exist yet)."""
    return samples.get((sample, tuple(sorted(labels.items()))), 0.0)


def binary(name: str) -> str:
    """A Debian package's program (prometheus, promtool, prometheus-pushgateway), or fail saying how."""
    import shutil

    import pytest

    path = shutil.which(name)
    if not path:
        pytest.fail(
            f"{name} is not installed: `apt-get install prometheus prometheus-pushgateway` (.ci/run does)"
        )
    return path


def start_pushgateway(folder: Path) -> tuple[subprocess.Popen, str]:
    """Debian's prometheus-pushgateway on a free port; return (process, host:port)."""
    address = f"127.0.0.1:{free_port()}"
    process = start_process(
        [binary("prometheus-pushgateway"), f"--web.listen-address={address}"], folder / "push.log"
    )
    wait_for_http(f"http://{address}/-/ready", process, timeout_s=30)
    return process, address


def start_prometheus(config: dict, folder: Path) -> tuple[subprocess.Popen, str]:
    """Debian's prometheus with ``config`` (written to ``folder``/prometheus.yml); return (process, URL)."""
    import yaml

    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    process = start_process(
        [
            binary("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        folder / "prometheus.log",
    )
    wait_for_http(f"{url}/-/ready", process, timeout_s=60)
    return process, url


def numbered(texts: list[str]) -> list[str]:
    """Answer ids for ``texts`` (``id-0``, ``id-1``, ...), as the predictor would give them."""
    return [f"id-{i}" for i in range(len(texts))]


def user_environment(home: Path) -> dict[str, str]:
    """A shell with no project variables (no MLFLOW_*, KFP_HOST, AWS_*, MLOPS_HOME, TMPDIR, GPU, ...): only
    PATH, a HOME and a locale, plus the suite's process counter (tests/counting), which changes nothing."""
    keep = ("PATH", "LANG", "SENTIMENT_TEST_COUNTS", "PYTHONPATH")
    return {name: os.environ[name] for name in keep if name in os.environ} | {"HOME": str(home)}


def make(*arguments: str, env: dict[str, str], timeout_s: float = 900) -> str:
    """``make <arguments>`` in the repository root, as a user types it; its output (it must succeed)."""
    done = subprocess.run(
        ["make", *arguments], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"make {' '.join(arguments)}:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return done.stdout
