"""The MLOps loop on real data, end to end, on this machine: the training pipeline (kfp.local) promotes a
champion trained on TweetEval; the real predictor serves it; 1,000 YouTube and Reddit comments (a shifted
domain) are sent and their true labels posted to ``:feedback``; the monitoring pipeline must detect
drift and the quality drop and start one retraining on TweetEval plus the feedback, which the gate judges
on the test split and the held-out feedback; then 1,000 labelled TweetEval validation tweets (in domain)
must start none. Writes every figure: the live-quality gauges, the monitor's decisions, the retraining
record and the gate's decision with its interval.

    python bench/retraining_loop.py [--max-rows 1000] [--steps 60]
                                    [--output bench/results/retraining-loop.json]

Smaller budgets than ``make pipeline-run`` (a transformer of --steps steps on --max-rows rows per split):
this measures the loop, not the best model.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import yaml
from prometheus_client.parser import text_string_to_metric_families

from components.ingest import read_source
from components.monitor import MONITOR_EXPERIMENT
from components.retrain import RETRAIN_EXPERIMENT
from components.validate import find_bad_rows
from monitoring.live_quality import quality_from_counts, version_counts
from pipelines.params import DEFAULT_PARAMS_FILE

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pipelines_run(*arguments: str, workdir: Path, params: Path) -> str:
    """``python -m pipelines.run`` (what ``make pipeline-run`` / ``make monitor`` run); its output."""
    command = [
        sys.executable,
        "-m",
        "pipelines.run",
        *arguments,
        "--params",
        str(params),
        "--workdir",
        str(workdir),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
    )
    (workdir / "logs").mkdir(exist_ok=True)
    (workdir / "logs" / f"run-{time.time():.0f}.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def serve_and_label(workdir: Path, frame: pd.DataFrame) -> dict:
    """Serve the champion, send ``frame``'s texts (50 a request), post their labels; the gauges, then stop."""
    port = free_port()
    log = open(workdir / "logs" / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    command = [sys.executable, "-m", "serving", "--http_port", str(port), "--grpc_port", str(free_port())]
    command += [
        "--workers",
        "1",
        "--prediction_log",
        str(workdir / "predictions"),
        "--prediction_log_sample",
        "1.0",
    ]
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/v2/models/sentiment/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        version = None
        for start in range(0, len(frame), 50):
            batch = frame.iloc[start : start + 50]
            answer = httpx.post(
                f"{url}/v1/models/sentiment:predict", json={"instances": batch["text"].tolist()}, timeout=60
            )
            answer.raise_for_status()
            version = answer.json()["model_version"]
            labels = [
                {"id": p["id"], "label": y}
                for p, y in zip(answer.json()["predictions"], batch["label"], strict=True)
            ]
            httpx.post(f"{url}/v1/models/sentiment:feedback", json=labels, timeout=60).raise_for_status()
        metrics = httpx.get(f"{url}/metrics").text
        live = quality_from_counts(version_counts(metrics, version))
        gauges = {
            "model_version": version,
            "macro_recall_value": round(live.macro_recall, 4),
            "macro_recall_lower": round(live.lower, 4),
            "macro_recall_upper": round(live.upper, 4),
            "accuracy_value": round(live.accuracy, 4),
            "labelled": live.labelled,
        }
        for family in text_string_to_metric_families(metrics):
            for sample in family.samples:
                if (
                    sample.name == "sentiment_model_offline_score"
                    and sample.labels["metric"] == "test_macro_recall"
                ):
                    gauges["offline_test_macro_recall"] = round(sample.value, 4)
        return gauges
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
        log.close()


def latest_monitor_report(tracking_uri: str) -> dict:
    client = mlflow.MlflowClient(tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(MONITOR_EXPERIMENT).experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/drift/drift_report.json"))


def clean_sample(source: Path, rows: int, seed: int, split: str | None = None) -> pd.DataFrame:
    frame = read_source(str(source))
    if split:
        frame = frame[frame["split"] == split]
    return frame[find_bad_rows(frame, 5000) == ""].sample(n=rows, random_state=seed)[["text", "label"]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-rows", type=int, default=1000, help="rows per TweetEval split")
    parser.add_argument("--steps", type=int, default=60, help="transformer optimiser steps")
    parser.add_argument("--workdir", type=Path, default=REPO / ".mlops" / "bench-retraining-loop")
    parser.add_argument("--output", type=Path, default=Path("bench/results/retraining-loop.json"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    (args.workdir / "logs").mkdir()
    values = yaml.safe_load(DEFAULT_PARAMS_FILE.read_text())
    values["train_transformer"] |= {"max_steps": args.steps, "eval_steps": max(args.steps // 3, 1)}
    values["train_linear"] |= {"trials": 4}
    params = args.workdir / "params.yaml"
    params.write_text(yaml.safe_dump(values))
    tweeteval = DATA / "tweeteval_sentiment"
    data = ["--data", str(tweeteval), "--max-rows-per-split", str(args.max_rows)]
    tracking_uri = f"sqlite:///{args.workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)  # runs:/ URIs resolve against it
    figures, started = (
        {"max_rows_per_split": args.max_rows, "transformer_steps": args.steps},
        time.perf_counter(),
    )

    figures["first_training"] = pipelines_run(*data, workdir=args.workdir, params=params).splitlines()[-4:]
    figures["first_training_seconds"] = round(time.perf_counter() - started, 1)
    shifted = pd.concat(
        [
            clean_sample(DATA / "youtube_comments_sentiment", 500, 0),
            clean_sample(DATA / "reddit_sentiment", 500, 0),
        ]
    ).sample(frac=1.0, random_state=1)
    figures["shifted_live_quality"] = serve_and_label(args.workdir, shifted)
    tic = time.perf_counter()
    figures["shifted_monitor_output"] = pipelines_run(
        "--monitor", str(args.workdir / "predictions"), *data, workdir=args.workdir, params=params
    ).splitlines()
    figures["shifted_monitor_seconds"] = round(time.perf_counter() - tic, 1)
    report = latest_monitor_report(tracking_uri)
    figures["shifted_monitor_decision"] = {
        k: report[k] for k in ("model_version", "windows", "quality", "retrain", "reasons", "notes")
    }
    client = mlflow.MlflowClient(tracking_uri)
    records = client.search_runs([client.get_experiment_by_name(RETRAIN_EXPERIMENT).experiment_id])
    figures["retrainings_started"] = len(records)
    if records:
        record = records[0]
        decision = json.loads(
            mlflow.artifacts.load_text(f"runs:/{record.info.run_id}/retrain/gate_decision.json")
        )
        figures["retraining_record"] = {
            "tags": {k: v for k, v in record.data.tags.items() if not k.startswith("mlflow.")},
            "params": record.data.params,
        }
        figures["retrained_gate_decision"] = {
            k: decision[k]
            for k in (
                "promoted",
                "reason",
                "weights",
                "candidate_score",
                "champion_score",
                "interval",
                "candidate_set_scores",
                "registered_version",
            )
        }

    validation = clean_sample(tweeteval, 1000, 2, split="validation")
    figures["in_domain_live_quality"] = serve_and_label(args.workdir, validation)
    figures["in_domain_monitor_output"] = pipelines_run(
        "--monitor", str(args.workdir / "predictions"), *data, workdir=args.workdir, params=params
    ).splitlines()
    report = latest_monitor_report(tracking_uri)
    figures["in_domain_monitor_decision"] = {
        k: report[k] for k in ("model_version", "windows", "quality", "retrain", "reasons", "notes")
    }
    figures["retrainings_started_in_total"] = len(
        client.search_runs([client.get_experiment_by_name(RETRAIN_EXPERIMENT).experiment_id])
    )
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
