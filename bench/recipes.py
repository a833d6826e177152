"""Training recipes compared on every held-out set: the training mix (TweetEval alone, or TweetEval with the
Reddit and YouTube comment sets, as they come or mixed by size ** 0.5) x the class-imbalance treatment
(components/imbalance.py) x the linear featurizer (TF-IDF n-grams, MiniLM sentence embeddings). The data goes
through the pipeline's own ingest, validate and preprocess functions, once: every recipe is scored on the
same test slices, one per source (TweetEval's is carved from its train split, the comment sets' from theirs),
so a recipe that trains on TweetEval alone meets the comment sets there as unseen data. Per recipe:
validation macro recall (on the validation mix it would select on), each test slice, their mean (the gate's
score) and recall per class on each slice. Prints a table and writes JSON.

    python bench/recipes.py [--data ../shared/data] [--max-rows 10000] [--transformer-steps 0]
                            [--transformer-weightings class_weight,none] [--skip-linear]
                            [--output bench/results/recipes.json]

With ``--transformer-steps N`` the fine-tuned transformer (params.yaml's, through train_transformer, one
seed) joins the table at N optimiser steps, on the size ** 0.5 mix, once per loss weighting in
``--transformer-weightings``: a full fine-tuning takes 40 minutes on 2 cores, so N is a fraction of it and
the rows compare recipes at that budget. An unweighted run also gives a ``prior_correction (post hoc)``
row: its answers divided by the training prior (what that treatment's model answers; its checkpoint
selection may differ). ``--skip-linear`` runs the transformer alone.
"""

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from components.imbalance import IMBALANCE_TREATMENTS, prior_scale
from components.ingest import ingest_source
from components.preprocess import split_frame
from components.scores import classification_metrics
from components.train_linear import build_classifier, tfidf_features
from components.tune_linear import fit_classifier
from components.validate import validate_rows
from core.labels import LABELS
from core.text import normalize_text
from models.linear import embed_texts, load_encoder
from models.output import probabilities_frame
from pipelines.params import PipelineParams

SOURCES = ("tweeteval_sentiment", "reddit_sentiment", "youtube_comments_sentiment")
MIXES = {"tweeteval alone": None, "3 sources, as they come": 1.0, "3 sources, size ** 0.5": 0.5}


def prepared_splits(data: Path, max_rows: int, seed: int) -> dict[str, dict[str, pd.DataFrame]]:
    """Per mix, its train and validation frames, and the test frame all mixes share."""
    params = PipelineParams.load()
    with tempfile.TemporaryDirectory() as tmp:
        raw, clean, quarantine = (str(Path(tmp) / f"{n}.parquet") for n in ("raw", "clean", "quarantine"))
        sources = [str(data / s) for s in SOURCES]
        ingest_source(replace(params.ingest, sources=sources, max_rows_per_split=max_rows), raw, seed)
        validate_rows(raw, clean, quarantine, 1.0, params.validate.max_text_chars)
        frame = pd.read_parquet(clean)
    frame["text"] = frame["text"].map(normalize_text)
    fractions = (params.preprocess.validation_fraction, params.preprocess.test_fraction)
    mixes = {}
    for name, exponent in MIXES.items():
        splits = split_frame(frame, *fractions, seed=seed, mix_exponent=exponent or 1.0)
        if exponent is None:
            splits |= {s: splits[s][splits[s]["source"] == SOURCES[0]] for s in ("train", "validation")}
        mixes[name] = splits
    return mixes


class Featurizer:
    """TF-IDF fitted on each mix's train split, or sentence embeddings cached by text across recipes."""

    def __init__(self, kind: str, encoder_id: str, batch_size: int):
        self.kind, self.batch_size = kind, batch_size
        self.encoder = load_encoder(encoder_id) if kind == "embeddings" else None
        self.cache: dict[str, np.ndarray] = {}

    def fit(self, train: pd.DataFrame):
        if self.kind == "tfidf":
            self.vectorizer = tfidf_features().fit(train["text"])
        return self

    def __call__(self, texts: pd.Series):
        if self.kind == "tfidf":
            return self.vectorizer.transform(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache |= dict(zip(missing, embed_texts(self.encoder, missing, self.batch_size), strict=True))
        return np.stack([self.cache[t] for t in texts])


def scored(frames: dict[str, pd.DataFrame], answers: dict[str, list[str]]) -> dict[str, float]:
    """Macro recall of ``answers`` (labels per set) on validation and each source's test slice, recall per
    class, and the held-out mean (the test slices')."""
    row = {}
    for name, frame in frames.items():
        metrics = classification_metrics(frame["label"].tolist(), answers[name])
        row[f"{name}_macro_recall"] = metrics["macro_recall"]
        row |= {f"{name}_{label}_recall": metrics[f"{label}_recall"] for label in LABELS}
    row["heldout_mean"] = statistics.fmean(row[f"test_{s}_macro_recall"] for s in SOURCES)
    return row


TRANSFORMER_MIX = "3 sources, size ** 0.5"


def transformer_rows(
    mixes: dict, test: pd.DataFrame, steps: int, weightings: list[str], seed: int
) -> list[dict]:
    """Fine-tune params.yaml's transformer on TRANSFORMER_MIX at ``steps`` steps once per loss weighting
    in ``weightings``; score each (and an unweighted run's answers prior-corrected) on validation and
    every test slice."""
    import mlflow

    from components.train_transformer import train_transformer_model
    from core.labels import probability_columns

    params = PipelineParams.load()
    config = replace(params.train_transformer, max_steps=steps, max_minutes=float(steps), seeds=1)
    splits, rows = mixes[TRANSFORMER_MIX], []
    train_y = splits["train"]["label"].tolist()
    frames = {"validation": splits["validation"]} | {f"test_{s}": test[test["source"] == s] for s in SOURCES}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: f"{tmp}/{name}.parquet" for name in ("train", "validation")}
        for name, path in paths.items():
            splits[name].to_parquet(path)
        for weighting in tqdm(weightings, desc="transformer runs"):
            started = time.perf_counter()
            run = replace(params.run, seed=seed, experiment="recipes")
            result = train_transformer_model(
                paths["train"],
                paths["validation"],
                replace(config, imbalance=weighting),
                run,
                f"sqlite:///{tmp}/mlflow.db",
                {},
            )
            model = mlflow.pyfunc.load_model(result.model_uri)
            answers = {
                name: model.predict(frame[["text"]])[probability_columns()].to_numpy()
                for name, frame in frames.items()
            }
            seconds = time.perf_counter() - started
            variants = [(weighting, None)]
            if weighting == "none":  # the same training; its answers divided by the prior
                variants.append(("prior_correction (post hoc)", prior_scale(train_y, "prior_correction")))
            for name, scale in variants:
                labels = {
                    k: probabilities_frame(list(LABELS), v, scale)["label"].tolist()
                    for k, v in answers.items()
                }
                recipe = {"featurizer": "transformer", "mix": TRANSFORMER_MIX, "imbalance": name}
                rows.append(
                    recipe | {"train_rows": len(train_y)} | scored(frames, labels) | {"seconds": seconds}
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--max-rows", type=int, default=10_000, help="rows per split per source (0: all)")
    parser.add_argument("--transformer-steps", type=int, default=0, help="fine-tune at N steps (0: skip)")
    parser.add_argument(
        "--transformer-weightings",
        default="class_weight,none",
        help="loss weightings to fine-tune, one run each",
    )
    parser.add_argument("--skip-linear", action="store_true", help="only the transformer runs")
    parser.add_argument("--output", type=Path, default=Path("bench/results/recipes.json"))
    args = parser.parse_args()
    params = PipelineParams.load()
    linear, seed = params.train_linear, params.run.seed
    mixes = prepared_splits(args.data, args.max_rows, seed)
    test = next(iter(mixes.values()))["test"]
    rows = []
    recipes = [(f, m, i) for f in ("tfidf", "embeddings") for m in MIXES for i in IMBALANCE_TREATMENTS]
    recipes = [] if args.skip_linear else recipes
    featurizers = {}
    for featurizer, mix, imbalance in tqdm(recipes, desc="recipes"):
        started = time.perf_counter()
        splits = mixes[mix]
        if featurizer not in featurizers or featurizer == "tfidf":
            featurizers[featurizer] = Featurizer(featurizer, linear.encoder_id, linear.batch_size)
        features = featurizers[featurizer].fit(splits["train"])
        train_y = splits["train"]["label"].tolist()
        build = lambda c, weights: build_classifier(linear.classifier, c, weights, seed)  # noqa: E731
        model = fit_classifier(build, linear.c, imbalance, seed, features(splits["train"]["text"]), train_y)
        frames = {"validation": splits["validation"]} | {
            f"test_{s}": test[test["source"] == s] for s in SOURCES
        }
        scale = prior_scale(train_y, imbalance)
        answers = {
            name: probabilities_frame(list(model.classes_), model.predict_proba(features(f["text"])), scale)
            for name, f in frames.items()
        }
        scores = scored(frames, {name: answer["label"].tolist() for name, answer in answers.items()})
        rows.append(
            {"featurizer": featurizer, "mix": mix, "imbalance": imbalance, "train_rows": len(train_y)}
            | scores
            | {"seconds": time.perf_counter() - started}
        )
    if args.transformer_steps:
        weightings = args.transformer_weightings.split(",")
        rows += transformer_rows(mixes, test, args.transformer_steps, weightings, seed)
    header = f"{'featurizer':<11}{'mix':<25}{'imbalance':<17}{'val':>7}" + "".join(
        f"{s.split('_')[0][:8]:>9}" for s in SOURCES
    )
    print(header + f"{'mean':>8}")
    for row in rows:
        tests = "".join(f"{row[f'test_{s}_macro_recall']:>9.4f}" for s in SOURCES)
        print(
            f"{row['featurizer']:<11}{row['mix']:<25}{row['imbalance']:<17}"
            f"{row['validation_macro_recall']:>7.4f}{tests}{row['heldout_mean']:>8.4f}"
        )
    best = max(rows, key=lambda r: r["heldout_mean"])
    print(f"best by held-out mean: {best['featurizer']}, {best['mix']}, {best['imbalance']}")
    sizes = {s: int((test["source"] == s).sum()) for s in SOURCES}
    result = {
        "max_rows_per_split_per_source": args.max_rows,
        "test_rows": sizes,
        "classifier": linear.classifier,
        "c": linear.c,
        "seed": seed,
        "transformer_steps": args.transformer_steps,
        "recipes": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
