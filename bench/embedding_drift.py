"""False-alarm and detection rates of the embedding drift tests (monitoring/embedding_drift.py) on real data.
Each draw takes a fresh reference of 2,000 TweetEval training tweets (what training saves) from a pool of
20,000, then windows from the pool's other tweets (the exact null: the tests' calibration), TweetEval's
validation split (in domain: every alarm is false), and the Reddit and YouTube comment sets (shifted
domains: every alarm is a detection), at window sizes 100, 300 and 1,000. A fresh reference per draw
measures the rate over references; with one fixed reference, windows that overlap share its luck (an earlier
run with one reference: MMD significant in 23 % of null windows of 1,000). Per cell: how often each test is
significant, how often a window counts as drifted (significant and AUC >= min_auc), how often two disjoint
windows both do (the monitor's retrain rule, consecutive_windows = 2), and the median AUC.

    python bench/embedding_drift.py [--draws 100] [--data ../shared/data]
                                    [--output bench/results/embedding-drift.json]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from components.ingest import read_source
from components.validate import find_bad_rows
from monitoring.embedding_drift import embed, embedding_drift
from pipelines.params import PipelineParams

WINDOWS = (100, 300, 1000)
RULE = "two disjoint windows drifted (retrain rule)"
TRAIN_POOL = 20_000


def texts_of(source: str, split: str | None, limit: int, seed: int) -> list[str]:
    frame = read_source(source)
    if split:
        frame = frame[frame["split"] == split]
    frame = frame[
        find_bad_rows(frame, PipelineParams.load().validate.max_text_chars) == ""
    ]  # as validate does
    return frame.sample(n=min(limit, len(frame)), random_state=seed)["text"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--draws", type=int, default=100, help="windows drawn per set and size")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--output", type=Path, default=Path("bench/results/embedding-drift.json"))
    args = parser.parse_args()
    monitor = PipelineParams.load().monitor
    seed = 0
    sets = {
        "reference (tweeteval train)": (
            args.data / "tweeteval_sentiment",
            "train",
            TRAIN_POOL,
        ),
        "tweeteval validation (in domain)": (args.data / "tweeteval_sentiment", "validation", 2000),
        "reddit (shifted)": (args.data / "reddit_sentiment", None, 3000),
        "youtube (shifted)": (args.data / "youtube_comments_sentiment", None, 3000),
    }
    started = time.perf_counter()
    embedded = {
        name: embed(texts_of(str(path), split, limit, seed), monitor.encoder_id)
        for name, (path, split, limit) in sets.items()
    }
    embed_seconds = time.perf_counter() - started
    train = embedded.pop("reference (tweeteval train)")
    null = "tweeteval train, not in the reference (exact null)"
    rng = np.random.default_rng(seed)
    results, test_seconds = {}, []
    for size in WINDOWS:
        counts = {
            name: dict.fromkeys(("mmd significant", "classifier significant", "drifted", RULE), 0)
            for name in [null, *embedded]
        }
        aucs = {name: [] for name in counts}
        for draw in tqdm(range(args.draws), desc=f"n={size}", mininterval=10):
            shuffled = train[rng.permutation(len(train))]
            reference = shuffled[: monitor.reference_rows]
            for name, pool in {null: shuffled[monitor.reference_rows :], **embedded}.items():
                rows = rng.permutation(len(pool))
                verdicts = []
                for window in (pool[rows[:size]], pool[rows[size : 2 * size]]):
                    tic = time.perf_counter()
                    drift = embedding_drift(
                        reference, window, monitor.alpha, monitor.permutations, draw, monitor.min_auc
                    )
                    test_seconds.append(time.perf_counter() - tic)
                    verdicts.append(drift.drifted)
                    if len(verdicts) == 1:
                        counts[name]["mmd significant"] += drift.mmd.pvalue < monitor.alpha / 2
                        counts[name]["classifier significant"] += drift.classifier.pvalue < monitor.alpha / 2
                        counts[name]["drifted"] += drift.drifted
                        aucs[name].append(drift.classifier.statistic)
                counts[name][RULE] += all(verdicts)
        for name, cell in counts.items():
            results.setdefault(name, {})[str(size)] = {k: v / args.draws for k, v in cell.items()} | {
                "median_auc": round(float(np.median(aucs[name])), 3)
            }
    report = {
        "alpha": monitor.alpha,
        "permutations": monitor.permutations,
        "reference_rows": monitor.reference_rows,
        "train_pool": len(train),
        "min_auc": monitor.min_auc,
        "draws": args.draws,
        "alarm_rate": results,
        "embed_seconds": round(embed_seconds, 1),
        "seconds_per_window_test": {
            "median": round(float(np.median(test_seconds)), 3),
            "max": round(float(np.max(test_seconds)), 3),
        },
    }
    print(
        f"alpha {monitor.alpha} (each test at alpha/2), min AUC {monitor.min_auc}, {args.draws} draws a cell"
    )
    for column in ("mmd significant", "classifier significant", "drifted", RULE, "median_auc"):
        print(f"\n{column}\n{'set':<52}" + "".join(f"{f'n={n}':>9}" for n in WINDOWS))
        for name, by_size in results.items():
            print(f"{name:<52}" + "".join(f"{by_size[str(n)][column]:>9.2f}" for n in WINDOWS))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
