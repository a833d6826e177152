"""Served against in-process throughput (not a test), measured side by side in one run: the candidates of
the latest ``make pipeline-run`` in a work dir, each registered, published as a serving bundle and served
by ``python -m serving`` in the runtime it would serve (INT8 where the model has one), and the same
bundle loaded in this process in the same runtime. On the same texts, in alternating rounds (the median of
``--rounds``): texts/s at ``--texts-per-request`` texts per call (over HTTP: sequential v1 requests on one
kept-alive connection), and the median latency of one text. Prints the table and the served/in-process
ratios; writes bench/results/served-throughput.json.

    python bench/served_throughput.py --workdir .mlops [--data ../shared/data/tweeteval_sentiment/hf_parquet]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serve import benchmark_texts  # noqa: E402
from bench.time_to_ready import BENCH_MODEL, free_port, latest_candidates, register  # noqa: E402
from models.bundle import publish_bundle  # noqa: E402
from models.runtime_choice import has_int8_runtime, load_in_runtime  # noqa: E402

V1 = "/v1/models/sentiment:predict"
FAMILIES = ("transformer", "linear-embeddings", "linear-tfidf")


def start_predictor(bundle: str, runtime: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    http, grpc = free_port(), free_port()
    command = [sys.executable, "-m", "serving", "--model_uri", bundle, "--runtime", runtime]
    process = subprocess.Popen(
        [*command, "--http_port", str(http), "--grpc_port", str(grpc)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url, deadline = f"http://127.0.0.1:{http}", time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/models/sentiment/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the predictor on {bundle} ({runtime}) exited")
        time.sleep(0.1)
    raise RuntimeError(f"the predictor on {bundle} ({runtime}) never got ready")


def texts_per_second(call, chunks: list[list[str]]) -> float:
    started = time.perf_counter()
    for chunk in chunks:
        call(chunk)
    return sum(map(len, chunks)) / (time.perf_counter() - started)


def one_text_p50_ms(call, texts: list[str]) -> float:
    timings = []
    for text in texts:
        started = time.perf_counter()
        call([text])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(bundle: str, runtime: str, texts: list[str], size: int, rounds: int, env: dict) -> dict:
    """In-process and served texts/s at ``size`` texts per call and one-text p50, alternating rounds."""
    model = load_in_runtime(bundle, runtime)
    process, url = start_predictor(bundle, runtime, env)
    chunks = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
    singles = texts[:200]
    try:
        with httpx.Client(timeout=60) as client:

            def served(chunk: list[str]) -> None:
                client.post(f"{url}{V1}", json={"instances": chunk}).raise_for_status()

            def in_process(chunk: list[str]) -> None:
                model.predict(pd.DataFrame({"text": chunk}))

            served(chunks[0]), in_process(chunks[0])  # warm both
            rates = {"in_process": [], "served": []}
            for _ in range(rounds):
                rates["in_process"].append(texts_per_second(in_process, chunks))
                rates["served"].append(texts_per_second(served, chunks))
            p50 = {
                "in_process": one_text_p50_ms(in_process, singles),
                "served": one_text_p50_ms(served, singles),
            }
    finally:
        process.terminate()
        process.wait(60)
    medians = {where: statistics.median(values) for where, values in rates.items()}
    return {
        "runtime": runtime,
        "texts_per_second": medians,
        "rounds": rates,
        "served_over_in_process": medians["served"] / medians["in_process"],
        "one_text_p50_ms": p50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=REPO / ".mlops", help="a make pipeline-run work dir")
    parser.add_argument("--experiment", default="sentiment")
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/tweeteval_sentiment/hf_parquet"))
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--texts-per-request", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "served-throughput.json")
    args = parser.parse_args()
    mlflow.set_tracking_uri(f"sqlite:///{args.workdir.resolve() / 'mlflow.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STORAGE_URI", "MODEL_URI"))}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true"}
    texts = benchmark_texts(args.data, args.texts)
    candidates = latest_candidates(mlflow.MlflowClient(), args.experiment)
    rows = {}
    with tempfile.TemporaryDirectory() as bundles:
        for family in FAMILIES:
            if family not in candidates:
                continue
            bundle = publish_bundle(bundles, BENCH_MODEL, register(candidates[family]))
            bundle = bundle.rstrip("/")
            runtime = "int8" if has_int8_runtime(bundle) else "fp32"
            rows[family] = measure(bundle, runtime, texts, args.texts_per_request, args.rounds, env)
    size = args.texts_per_request
    print(f"{'family':<19}{'runtime':<8}{f'in-process t/s @{size}':>22}{f'served t/s @{size}':>19}"
          f"{'served/in-process':>19}{'p50 1 text in-process ms':>26}{'served ms':>11}")  # fmt: skip
    for family, row in rows.items():
        rate, p50 = row["texts_per_second"], row["one_text_p50_ms"]
        ratio = row["served_over_in_process"]
        print(f"{family:<19}{row['runtime']:<8}{rate['in_process']:>22.1f}{rate['served']:>19.1f}"
              f"{ratio:>19.2f}{p50['in_process']:>26.1f}{p50['served']:>11.1f}")  # fmt: skip
    result = {"workdir": str(args.workdir), "texts": len(texts), "texts_per_request": size, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
