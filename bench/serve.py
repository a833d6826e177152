"""Serving benchmark (not a test): for each model, measured side by side in one run,

  (a) the model called in-process on the same texts: texts/s at each batch size (the best is the limit
      for this hardware) and single-text latency; for a transformer also its INT8 runtime (ONNX Runtime),
  (b) our predictor (`python -m serving`) with adaptive batching,
  (c) our predictor with batching off (--max_batch_size 1),
  (d) a minimal FastAPI/uvicorn wrapper calling the model per request (bench/plain_fastapi.py),

driven over HTTP by a load generator in a second process (bench/load.py; one text per request) at each
concurrency; then a soak run of our predictor at the highest concurrency, counting errors. Prints the
tables and the ratios the serving targets are about, and writes everything to JSON.

    python bench/serve.py --model linear=models:/sentiment/1 --model transformer=models:/sentiment/2 \
        [--tracking-uri sqlite:///.mlops/mlflow.db] [--data ../shared/data/tweeteval_sentiment] \
        [--concurrency 1 8 32 64] [--seconds 10] [--soak-requests 10000] [--output bench/results/serve.json]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import drive  # noqa: E402
from components.ingest import read_source  # noqa: E402
from core.text import normalize_text  # noqa: E402
from models.onnx_runtime import INT8_FILE, export_int8, onnx_session, session_logits  # noqa: E402
from models.transformer import predict_probabilities, torch_logits  # noqa: E402
from tests.helpers import free_port, start_process, stop_process, wait_for_http  # noqa: E402

V1 = "/v1/models/sentiment:predict"
BATCH_SIZES = (1, 8, 16, 32, 64)


def benchmark_texts(source: str, count: int = 2000) -> list[str]:
    """``count`` texts of the source's test split (or of the whole source when it has none)."""
    frame = read_source(source)
    test = frame[frame["split"] == "test"] if (frame["split"] == "test").any() else frame
    return test["text"].head(count).tolist()


def texts_per_second(predict, texts: list[str], batch_size: int, budget_s: float = 4.0) -> float:
    """Throughput of ``predict`` on consecutive batches of ``batch_size`` texts, for about ``budget_s``."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget_s:
        batch = [texts[(done + i) % len(texts)] for i in range(batch_size)]
        predict(batch)
        done += batch_size
    return done / (time.perf_counter() - started)


def single_text_ms(predict, texts: list[str], count: int = 200) -> dict:
    latencies = []
    for text in texts[:count]:
        began = time.perf_counter()
        predict([text])
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "p50_ms": round(float(np.median(latencies)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def in_process(predict, texts: list[str]) -> dict:
    """(a): texts/s per batch size, the best of them, and single-text latency."""
    predict(texts[:8])  # warm up
    by_batch = {b: round(texts_per_second(predict, texts, b), 1) for b in BATCH_SIZES}
    best = max(by_batch, key=by_batch.get)
    return {
        "texts_per_second": by_batch,
        "best_batch_size": best,
        "best_texts_per_second": by_batch[best],
        "single_text": single_text_ms(predict, texts),
    }


def transformer_runtimes(model_uri: str, texts: list[str]) -> dict | None:
    """FP32 (torch) and INT8 (ONNX Runtime) in-process on the same tokenised batches; None for a model
    that is not a transformer. Exports the INT8 file when the logged model predates it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(mlflow.artifacts.download_artifacts(model_uri)) / "artifacts" / "model"
    if not (folder / "config.json").exists():
        return None
    config = mlflow.pyfunc.load_model(model_uri).model_config or {}
    max_length, batch_size = int(config.get("max_length", 64)), int(config.get("batch_size", 32))
    with tempfile.TemporaryDirectory() as tmp:
        if not (folder / INT8_FILE).exists():
            folder = Path(shutil.copytree(folder, Path(tmp) / "model"))
            export_int8(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        import torch

        logits = {
            "fp32_torch": torch_logits(AutoModelForSequenceClassification.from_pretrained(folder).eval()),
            "int8_onnxruntime": session_logits(onnx_session(folder / INT8_FILE, torch.get_num_threads())),
        }
        results = {}
        for name, logits_of in logits.items():

            def predict(batch, logits_of=logits_of):
                normalised = [normalize_text(t) for t in batch]
                return predict_probabilities(logits_of, tokenizer, normalised, max_length, batch_size)

            results[name] = in_process(predict, texts)
    best = {name: result["best_texts_per_second"] for name, result in results.items()}
    results["int8_speedup"] = round(best["int8_onnxruntime"] / best["fp32_torch"], 2)
    return results


def start_server(kind: str, model_uri: str, tracking_uri: str, log_dir: Path):
    """Start (b) ``batching``, (c) ``no_batching`` or (d) ``plain_fastapi``; return (process, url, path,
    body style)."""
    port = free_port()
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "MODEL_URI": model_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    if kind == "plain_fastapi":
        app = "bench.plain_fastapi:app"
        args = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]
        health, path, body = "/health", "/predict", "plain"
    else:
        args = [
            sys.executable,
            "-m",
            "serving",
            "--model_uri",
            model_uri,
            "--http_port",
            str(port),
            "--grpc_port",
            str(free_port()),
            "--workers",
            "1",
        ]
        args += ["--max_batch_size", "1"] if kind == "no_batching" else []
        health, path, body = "/v2/models/sentiment/ready", V1, "v1"
    process = start_process(args, log_dir / f"{kind}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}{health}", process, timeout_s=300)
    return process, url, path, body


def served(kind: str, model_uri: str, tracking_uri: str, texts: list[str], args, load, log_dir: Path) -> dict:
    """(b), (c) or (d) at each concurrency, after a short warm-up; with the soak run for (b)."""
    process, url, path, body = start_server(kind, model_uri, tracking_uri, log_dir)
    try:
        load.submit(drive, url, path, body, texts, 8, seconds=2).result()  # warm-up
        results = {}
        for concurrency in args.concurrency:
            results[f"c{concurrency}"] = load.submit(
                drive, url, path, body, texts, concurrency, seconds=args.seconds
            ).result()
            print(f"    {kind:14s} c={concurrency:<3d} {results[f'c{concurrency}']}", flush=True)
        if kind == "batching" and args.soak_requests:
            results["soak"] = load.submit(
                drive, url, path, body, texts, max(args.concurrency), requests=args.soak_requests
            ).result()
            print(f"    {kind:14s} soak  {results['soak']}", flush=True)
        return results
    finally:
        stop_process(process)


def ratios(result: dict, concurrency: list[int]) -> dict:
    """The figures the serving targets are about (see docs/results.md, "Serving benchmark")."""
    a, b, d = result["in_process"], result["batching"], result["plain_fastapi"]
    c32, c1 = f"c{32 if 32 in concurrency else max(concurrency)}", f"c{min(concurrency)}"
    out = {
        "b_over_a_throughput": b[c32]["throughput_rps"] / a["best_texts_per_second"],
        "b_over_d_throughput": b[c32]["throughput_rps"] / d[c32]["throughput_rps"],
        "b_over_d_p99": b[c32]["p99_ms"] / d[c32]["p99_ms"],
        "b_p50_minus_a_single_ms_at_c1": b[c1]["p50_ms"] - a["single_text"]["p50_ms"],
    }
    if result.get("runtimes"):
        out["int8_over_fp32_in_process"] = result["runtimes"]["int8_speedup"]
    return {k: round(v, 2) for k, v in out.items()}


def print_table(name: str, result: dict, concurrency: list[int]) -> None:
    a = result["in_process"]
    print(
        f"\n{name}: (a) in process: {a['best_texts_per_second']:.0f} texts/s at batch {a['best_batch_size']},"
        f" single text p50 {a['single_text']['p50_ms']} ms; by batch size {a['texts_per_second']}"
    )
    if result.get("runtimes"):
        r = result["runtimes"]
        print(
            f"    fp32 torch {r['fp32_torch']['best_texts_per_second']:.0f} texts/s, INT8 ONNX Runtime"
            f" {r['int8_onnxruntime']['best_texts_per_second']:.0f} texts/s (x{r['int8_speedup']})"
        )
    header = "".join(f"{'c=' + str(c):>24s}" for c in concurrency)
    print(f"{'':16s}{header}\n{'':16s}" + "".join(f"{'req/s  p50  p99 ms':>24s}" for _ in concurrency))
    for kind in ("batching", "no_batching", "plain_fastapi"):
        cells = [result[kind][f"c{c}"] for c in concurrency]
        print(
            f"{kind:16s}"
            + "".join(f"{c['throughput_rps']:>10.0f}{c['p50_ms']:>7.0f}{c['p99_ms']:>7.0f}" for c in cells)
        )
    if "soak" in result["batching"]:
        soak = result["batching"]["soak"]
        print(f"soak at c={max(concurrency)}: {soak['requests']} requests, {soak['errors']} errors")
    print(f"ratios: {result['ratios']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", required=True, help="name=model URI (repeatable)")
    parser.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///.mlops/mlflow.db")
    )
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/tweeteval_sentiment"))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement per cell")
    parser.add_argument("--soak-requests", type=int, default=10000)
    parser.add_argument("--output", type=Path, default=REPO / "bench/results/serve.json")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(args.tracking_uri)
    texts = benchmark_texts(args.data)
    results = {"texts": len(texts), "concurrency": args.concurrency, "seconds": args.seconds, "models": {}}
    with (
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as load,
        tempfile.TemporaryDirectory() as logs,
    ):
        for name, model_uri in (spec.split("=", 1) for spec in args.model):
            print(f"{name} ({model_uri}): in process", flush=True)
            model = mlflow.pyfunc.load_model(model_uri)
            result = {
                "model_uri": model_uri,
                "in_process": in_process(
                    lambda batch, model=model: model.predict(pd.DataFrame({"text": batch})), texts
                ),
            }
            del model
            result["runtimes"] = transformer_runtimes(model_uri, texts)
            for kind in ("batching", "no_batching", "plain_fastapi"):
                result[kind] = served(kind, model_uri, args.tracking_uri, texts, args, load, Path(logs))
            result["ratios"] = ratios(result, args.concurrency)
            results["models"][name] = result
    for name, result in results["models"].items():
        print_table(name, result, args.concurrency)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
