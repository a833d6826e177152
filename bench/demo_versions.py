"""Would the cluster walk-through's versions behave as docs/cluster.md says? A first champion trained on a
small sample (``MAX_ROWS`` per split) and a second trained on the whole TweetEval train split, both the
pipeline's linear-embeddings candidate (MiniLM embeddings + logistic regression): does the second beat the
first by the gate's margin, with its paired-bootstrap interval above zero, and, served side by side, does
the canary analysis tell the small-sample model (the walk-through's deliberately bad canary) from the
full one within one window at ``make load``'s default rate?

    python bench/demo_versions.py [--data ../shared/data/tweeteval_sentiment/hf_parquet] [--max-rows 300]

Writes bench/results/demo-versions.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from core.config import params_section
from models.linear import embed_texts, load_encoder
from rollout.canary_analysis import AnalysisSettings
from rollout.canary_checks import VersionEvidence, check_class_mix, check_confidence

LABELS = ("negative", "neutral", "positive")


def fit(features: np.ndarray, labels: np.ndarray, seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed).fit(
        features, labels
    )


def evidence(
    version: str, probabilities: np.ndarray, requests: int, rng: np.random.Generator
) -> VersionEvidence:
    """What Prometheus would hold for ``version`` after ``requests`` texts drawn from the validation set."""
    drawn = probabilities[rng.integers(0, len(probabilities), requests)]
    counts = np.bincount(drawn.argmax(axis=1), minlength=3)
    return VersionEvidence(
        version=version,
        requests=requests,
        errors=0,
        latency_p99_seconds=None,
        class_counts={label: int(n) for label, n in zip(LABELS, counts, strict=True)},
        mean_confidence=float(drawn.max(axis=1).mean()),
    )


def paired_bootstrap(y: np.ndarray, first: np.ndarray, second: np.ndarray, seed: int, rounds: int = 1000):
    """Macro recall of ``second`` minus ``first`` and its 95 % percentile interval over resampled rows."""
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        gains.append(
            recall_score(y[rows], second[rows], average="macro")
            - recall_score(y[rows], first[rows], average="macro")
        )
    gain = recall_score(y, second, average="macro") - recall_score(y, first, average="macro")
    return gain, *np.percentile(gains, [2.5, 97.5])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/tweeteval_sentiment/hf_parquet"))
    parser.add_argument("--max-rows", type=int, default=300)
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument("--canary-percent", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=Path("bench/results/demo-versions.json"))
    args = parser.parse_args()

    train = pd.read_parquet(args.data / "train.parquet")
    validation = pd.read_parquet(args.data / "validation.parquet")
    encoder = load_encoder(params_section("train_linear")["encoder_id"])
    train_x = embed_texts(encoder, train["text"].tolist(), 64, progress=True)
    validation_x = embed_texts(encoder, validation["text"].tolist(), 64)
    sample = train.sample(n=args.max_rows, random_state=args.seed).index
    small = fit(train_x[sample], train["label"].to_numpy()[sample], args.seed)
    full = fit(train_x, train["label"].to_numpy(), args.seed)
    y = validation["label"].to_numpy()
    small_p, full_p = small.predict_proba(validation_x), full.predict_proba(validation_x)
    gain, low, high = paired_bootstrap(y, small_p.argmax(1), full_p.argmax(1), args.seed)
    gate = params_section("gate")

    analysis = params_section("canary_analysis")
    limits = AnalysisSettings.from_config(analysis, "mlops", "sentiment").per_look_thresholds()
    window = int(args.rps * analysis["interval_seconds"])  # requests in one window (= interval)
    canary_requests = window * args.canary_percent // 100
    rng = np.random.default_rng(args.seed)
    stable = evidence("full", full_p, window - canary_requests, rng)
    canary = evidence("small", small_p, canary_requests, rng)
    results = {
        "max_rows": args.max_rows,
        "validation_macro_recall": {
            "small": round(recall_score(y, small_p.argmax(1), average="macro"), 4),
            "full": round(recall_score(y, full_p.argmax(1), average="macro"), 4),
        },
        "gate": {
            "gain": round(gain, 4),
            "interval_95": [round(low, 4), round(high, 4)],
            "min_improvement": gate["min_improvement"],
            "promotes_full_over_small": bool(gain >= gate["min_improvement"] and low > 0),
        },
        "canary_window": {
            "rps": args.rps,
            "canary_percent": args.canary_percent,
            "requests": {"stable (full)": stable.requests, "canary (small)": canary.requests},
            "class_mix": check_class_mix(stable, canary, limits.alpha, limits.class_mix_min_shift).as_dict(),
            "confidence": check_confidence(stable, canary, limits.confidence_max_drop).as_dict(),
        },
    }
    printed = json.dumps(results, indent=2)
    print(printed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(printed + "\n")


if __name__ == "__main__":
    main()
