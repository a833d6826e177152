"""Report every candidate of the latest pipeline run: validation and test macro recall and macro F1,
macro recall per source's test set and per out-of-domain domain, the gate's score, training time,
single-text latency and model size, as logged to MLflow by the pipeline, plus the gate's decision.
Prints a table and writes it as JSON.

    python bench/candidates.py [--tracking-uri URI] [--output bench/results/candidates.json]

Run `make pipeline-run DATA=...` first: training is the pipeline's job, this script reads its runs.
"""

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

import mlflow

from core.decisions import latest_decision

COLUMNS = (
    ("validation_macro_recall", "val recall"),
    ("validation_macro_f1", "val F1"),
    ("test_macro_recall", "test recall"),
    ("test_macro_f1", "test F1"),
    ("train_seconds", "train s"),
    ("latency_ms_per_text", "ms/text"),
    ("model_mb", "MB"),
)


def report_columns(decision: dict) -> tuple[tuple[str, str], ...]:
    """COLUMNS with each source's test set and each out-of-domain set the gate weighed, and the gate's
    score."""
    sets = [name for name in decision.get("weights", {}) if name != "test"]  # test_<source>, ood_<domain>
    extra = tuple((f"{name}_macro_recall", name.split("_", 1)[1][:11]) for name in sets)
    return COLUMNS[:4] + extra + (("gate_score", "gate score"),) + COLUMNS[4:]


def candidate_rows(client: mlflow.MlflowClient, decision: dict, columns: tuple) -> list[dict]:
    rows = []
    for run_id, score in decision["candidate_scores"].items():
        run = client.get_run(run_id)
        params = run.data.params
        name = (
            f"linear-{params['featurizer']}" if params["model_family"] == "linear" else params["model_family"]
        )
        values = {k: run.data.metrics.get(k) for k, _ in columns} | {"gate_score": score}
        rows.append({"candidate": name, "run_id": run_id, **values})
    return rows


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{Path('.mlops/mlflow.db').resolve()}")
    parser.add_argument("--tracking-uri", default=default_uri)
    parser.add_argument("--experiment", default="sentiment")
    parser.add_argument("--output", type=Path, default=Path("bench/results/candidates.json"))
    args = parser.parse_args()

    mlflow.set_tracking_uri(args.tracking_uri)
    client = mlflow.MlflowClient()
    found = latest_decision(args.tracking_uri, args.experiment)
    if found is None:
        raise SystemExit(f"no gated run in experiment {args.experiment!r}: run the pipeline first")
    decision = asdict(found)
    columns = report_columns(decision)
    rows = candidate_rows(client, decision, columns)
    print(f"{'candidate':<16}" + "".join(f"{title:>12}" for _, title in columns))
    for row in rows:
        print(f"{row['candidate']:<16}" + "".join(f"{row[key] or float('nan'):>12.4g}" for key, _ in columns))
    weights = ", ".join(f"{name} {weight:g}" for name, weight in decision.get("weights", {"test": 1}).items())
    print(f"gate score: {decision['metric']} weighted by set ({weights})")
    chosen = next(row["candidate"] for row in rows if row["run_id"] == decision["run_id"])
    verdict = "promoted" if decision["promoted"] else "rejected"
    print(f"gate: best candidate {chosen}, {verdict}: {decision['reason']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"candidates": rows, "gate": decision}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
