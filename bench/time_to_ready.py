"""How long the predictor takes from process start to ready, per model family, from a local serving bundle
(what a pod does after KServe's storage initializer downloaded it): the candidates of the latest
``make pipeline-run`` in a work dir, each registered under a bench model name, published as a bundle and
served with ``python -m serving`` in FP32 and, where the model has one, its INT8 runtime, timed to
``/v2/models/<name>/ready``, with the model-load part read from ``sentiment_model_load_duration_seconds``
and Python's import of the server alone timed apart. Writes bench/results/time-to-ready.json.

    python bench/time_to_ready.py --workdir .mlops [--repeats 3]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.bundle import publish_bundle  # noqa: E402

BENCH_MODEL = "sentiment-time-to-ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def latest_candidates(client: mlflow.MlflowClient, experiment: str) -> dict[str, mlflow.entities.Run]:
    """The latest run of each candidate family (linear-embeddings, linear-tfidf, transformer, ensemble)."""
    found: dict[str, mlflow.entities.Run] = {}
    ids = [client.get_experiment_by_name(experiment).experiment_id]
    for run in client.search_runs(ids, order_by=["attributes.start_time DESC"], max_results=200):
        params, tags = run.data.params, run.data.tags
        family = params.get("model_family")
        if not family or "model_uri" not in tags:
            continue
        name = f"{family}-{params['featurizer']}" if family == "linear" else family
        found.setdefault(name, run)
    return found


def register(run: mlflow.entities.Run) -> str:
    """The candidate as a version of BENCH_MODEL."""
    return str(mlflow.register_model(run.data.tags["model_uri"], BENCH_MODEL).version)


def time_to_ready(bundle: str, runtime: str, env: dict[str, str]) -> dict[str, float] | None:
    """Seconds from the predictor's process start to its model's readiness, and its model-load part;
    None when the model has no such runtime (the predictor exits)."""
    http, grpc = free_port(), free_port()
    command = [sys.executable, "-m", "serving", "--model_uri", bundle, "--runtime", runtime]
    command += ["--http_port", str(http)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--grpc_port", str(grpc)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    try:
        while True:
            try:
                if httpx.get(f"{url}/v2/models/sentiment/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                return None
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"the predictor on {bundle} ({runtime}) never got ready")
            time.sleep(0.05)
        ready = time.perf_counter() - started
        metrics = httpx.get(f"{url}/metrics").text
        load = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("sentiment_model_load_duration_seconds ")
        )
        info = next(line for line in metrics.splitlines() if line.startswith("sentiment_model_info{"))
        return {"ready_s": ready, "model_load_s": load, "runtime": info.split('runtime="')[1].split('"')[0]}
    finally:
        process.terminate()
        process.wait(60)


def import_seconds(env: dict[str, str]) -> float:
    """A fresh interpreter importing the server (serving.__main__), as a pod's start does."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import serving.__main__"], cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=REPO / ".mlops", help="a make pipeline-run work dir")
    parser.add_argument("--experiment", default="sentiment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "time-to-ready.json")
    args = parser.parse_args()
    tracking_uri = f"sqlite:///{args.workdir.resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STORAGE_URI", "MODEL_URI"))}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1"}
    rows = {}
    with tempfile.TemporaryDirectory() as bundles:
        for family, run in sorted(latest_candidates(client, args.experiment).items()):
            bundle = publish_bundle(bundles, BENCH_MODEL, register(run)).rstrip("/")
            for runtime in ("fp32", "int8"):
                timings = [time_to_ready(bundle, runtime, env) for _ in range(args.repeats)]
                if None in timings:
                    continue  # no INT8 runtime in this model
                rows[f"{family} {runtime}"] = {
                    "runtime": timings[0]["runtime"],
                    "ready_s_median": statistics.median(t["ready_s"] for t in timings),
                    "model_load_s_median": statistics.median(t["model_load_s"] for t in timings),
                    "ready_s": [round(t["ready_s"], 2) for t in timings],
                }
    imports = statistics.median(import_seconds(env) for _ in range(args.repeats))
    print(f"python -c 'import serving.__main__': {imports:.2f} s (median of {args.repeats})")
    print(f"{'family, runtime asked':<26}{'served':<8}{'ready s':>9}{'model load s':>14}{'rest s':>8}")
    for family, row in rows.items():
        rest = row["ready_s_median"] - row["model_load_s_median"]
        load = row["model_load_s_median"]
        print(f"{family:<26}{row['runtime']:<8}{row['ready_s_median']:>9.2f}{load:>14.2f}{rest:>8.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"workdir": str(args.workdir), "repeats": args.repeats, "import_s_median": imports}
    result["families"] = rows
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
