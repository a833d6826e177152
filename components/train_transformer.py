"""train_transformer: fine-tune a Hugging Face sequence classifier (DistilBERT by default; the bundled
all-MiniLM-L6-v2 weights when no hub is reachable) on the linear candidates' split, within a step and
wall-clock budget, with early stopping on validation macro recall (TweetEval's metric), and log it to
MLflow as a pyfunc model with its training curve.
"""

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from kfp.dsl import Dataset, Input, Metrics, Model, Output
from scipy.special import softmax

from components import component
from components.candidate import TrainResult, candidate_run, finish_candidate
from components.imbalance import loss_weights, prior_scale
from components.scores import classification_metrics
from core.config import RunConfig
from core.hub import resolve_model
from core.labels import LABELS, probability_columns
from core.text import normalize_text
from models.output import probabilities_frame
from models.transformer import log_transformer_models

logger = logging.getLogger(__name__)


def _time_budget_callback(max_seconds: float):
    """Stop training (after one last evaluation and save) once ``max_seconds`` have passed."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self):
            self.started = time.monotonic()
            self.exhausted = False

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.started > max_seconds:
                self.exhausted = True
                control.should_training_stop = True
                control.should_evaluate = control.should_save = True
            return control

    return TimeBudget()


def _weighted_loss(labels: pd.Series, imbalance: str, label_smoothing: float):
    """Cross-entropy for ``Trainer(compute_loss_func=...)``, each class weighed by ``imbalance``
    (components/imbalance.py: ``class_weight`` gives n / (k * n_class), scikit-learn's "balanced", so the
    minority class counts as much in the loss as in macro recall; ``softened`` its square root)."""
    import torch

    weights = torch.tensor(list(loss_weights(labels.tolist(), imbalance).values()), dtype=torch.float32)

    def loss(outputs, targets, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(
            logits, targets, weight=weights.to(logits.device), label_smoothing=label_smoothing
        )

    return loss


def _tokenized(frame: pd.DataFrame, tokenizer, max_length: int, sort_by_length: bool = False):
    """Tokenise (no padding: the collator pads each batch); ``sort_by_length`` orders the rows by token count,
    so that evaluation batches, taken in order, carry little padding."""
    import datasets

    label_ids = {label: i for i, label in enumerate(LABELS)}
    data = datasets.Dataset.from_dict(
        {
            "text": [normalize_text(t) for t in frame["text"]],
            "label": [label_ids[x] for x in frame["label"]],
            "row": list(range(len(frame))),
        }
    )
    data = data.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length), batched=True
    )
    if not sort_by_length:
        return data
    lengths = data.map(lambda batch: {"length": [len(ids) for ids in batch["input_ids"]]}, batched=True)
    return lengths.sort("length")


def _in_row_order(prediction, rows: list[int]) -> np.ndarray:
    """The class probabilities of a ``Trainer.predict`` result, back in the order of the frame's rows."""
    probabilities = np.empty_like(prediction.predictions, dtype=np.float32)
    probabilities[rows] = softmax(prediction.predictions, axis=-1)
    return probabilities


def _validation_scorer(scale: list[float] | None):
    """``compute_metrics`` for the Trainer: macro F1 and recall of a ``Trainer.predict`` result (labels in
    its own row order), its answers prior-corrected by ``scale`` as the logged model's are."""

    def scores(prediction) -> dict[str, float]:
        answers = probabilities_frame(list(LABELS), softmax(prediction.predictions, axis=-1), scale)
        metrics = classification_metrics([LABELS[i] for i in prediction.label_ids], answers["label"].tolist())
        return {"macro_f1": metrics["macro_f1"], "macro_recall": metrics["macro_recall"]}

    return scores


def _log_training_curve(log_history: list[dict], suffix: str) -> None:
    """Log train loss and validation macro recall per step, and a plot of both (names end in ``suffix``:
    one curve per seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    scores = [(e["step"], e["eval_macro_recall"]) for e in log_history if "eval_macro_recall" in e]
    for step, loss in losses:
        mlflow.log_metric(f"train_loss{suffix}", loss, step=step)
    for step, score in scores:
        mlflow.log_metric(f"curve_validation_macro_recall{suffix}", score, step=step)
    fig, loss_axis = plt.subplots(figsize=(6, 4))
    if losses:
        loss_axis.plot(*zip(*losses, strict=True), color="tab:blue", label="train loss")
    loss_axis.set(xlabel="step", ylabel="train loss")
    score_axis = loss_axis.twinx()
    if scores:
        score_axis.plot(
            *zip(*scores, strict=True), color="tab:orange", marker="o", label="validation macro recall"
        )
    score_axis.set(ylabel="validation macro recall")
    fig.legend(loc="upper right")
    fig.tight_layout()
    mlflow.log_figure(fig, f"training/curve{suffix}.png")


@dataclass(frozen=True)
class TransformerConfig:
    """params.yaml ``train_transformer``: see the comments there (null ``max_steps`` leaves the number of
    steps to ``epochs``; null ``threads`` leaves it to torch)."""

    model_id: str
    offline_fallback: str
    max_length: int
    batch_size: int
    learning_rate: float
    epochs: float
    max_steps: int | None
    max_minutes: float
    eval_steps: int
    patience: int
    label_smoothing: float
    imbalance: str
    length_grouping: bool
    threads: int | None
    seeds: int
    gpu_seeds: int

    def __post_init__(self) -> None:
        for name in ("max_steps", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"train_transformer.{name} must be at least 1, or null")


@dataclass(frozen=True)
class FineTuned:
    """One fine-tuning: its saved model folder (weights, tokenizer, INT8 export), its validation
    probabilities in row order, and how it went."""

    folder: Path
    validation_probabilities: np.ndarray
    log_history: list[dict]
    steps: int
    seconds: float
    stopped_by: str


def fine_tune(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    config: TransformerConfig,
    seed: int,
    folder: Path,
    scale: list[float] | None,
) -> FineTuned:
    """Fine-tune ``config.model_id`` with ``seed`` on ``train`` and keep the checkpoint with the best
    validation macro recall (answers prior-corrected by ``scale``, as the logged model's are); save it
    with its tokenizer to ``folder``."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(seed)  # before the new classification head is initialised, so that runs repeat
    source = resolve_model(config.model_id, config.offline_fallback)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    budget = _time_budget_callback(config.max_minutes * 60)
    arguments = TrainingArguments(
        output_dir=str(folder.parent / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        train_sampling_strategy="group_by_length" if config.length_grouping else "random",
        per_device_eval_batch_size=config.batch_size * 2,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=-1 if config.max_steps is None else config.max_steps,
        lr_scheduler_type="linear",
        warmup_steps=0.06,
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model="macro_recall",
        logging_steps=max(1, config.eval_steps // 4),
        report_to="none",
        seed=seed,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=_tokenized(train, tokenizer, config.max_length),
        eval_dataset=_tokenized(validation, tokenizer, config.max_length, sort_by_length=True),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_validation_scorer(scale),
        compute_loss_func=_weighted_loss(train["label"], config.imbalance, config.label_smoothing),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience), budget],
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.args.train_sampling_strategy = "random"  # else predict() takes a length-grouped shuffle too
    prediction = trainer.predict(trainer.eval_dataset)
    trainer.save_model(str(folder))
    stopped_by = "time_budget" if budget.exhausted else "schedule_or_early_stopping"
    logger.info("seed %d: %d steps in %.0f s (%s)", seed, trainer.state.global_step, seconds, stopped_by)
    return FineTuned(
        folder,
        _in_row_order(prediction, trainer.eval_dataset["row"]),
        trainer.state.log_history,
        trainer.state.global_step,
        seconds,
        stopped_by,
    )


def seed_count(config: TransformerConfig, on_gpu: bool) -> int:
    """How many seeds to fine-tune: ``gpu_seeds`` on a GPU, ``seeds`` otherwise."""
    count = config.gpu_seeds if on_gpu else config.seeds
    if count < 1:
        raise ValueError(f"train_transformer.seeds and gpu_seeds must be at least 1, got {count}")
    return count


def seed_vote(members: list[FineTuned], scale: list[float] | None) -> pd.DataFrame:
    """The validation answers of the logged model: one member's, or the average of the members' (each
    prior-corrected first), as models/ensemble.py averages them when it serves."""
    answers = [probabilities_frame(list(LABELS), m.validation_probabilities, scale) for m in members]
    if len(answers) == 1:
        return answers[0]
    return probabilities_frame(list(LABELS), np.mean([a[probability_columns()] for a in answers], axis=0))


def train_transformer_model(
    train_path: str,
    validation_path: str,
    config: TransformerConfig,
    run: RunConfig,
    tracking_uri: str,
    lineage: dict,
) -> TrainResult:
    """Fine-tune ``config.model_id`` on ``train_path`` (:func:`fine_tune`) with seeds ``run.seed``,
    ``run.seed + 1``, ... (:func:`seed_count`): one seed gives the model, several a seed ensemble that
    averages their probabilities with equal weights (nothing tuned on validation).

    Each fine-tuning stops at the first of: ``epochs`` (or ``max_steps``), ``max_minutes`` of wall-clock
    time, or ``patience`` evaluations without improvement. The learning rate warms up, then decays linearly
    to zero at the last scheduled step: set ``max_steps`` to what fits the time budget so the decay completes.
    With ``length_grouping`` training batches group texts of similar length (evaluation always runs in
    length order), so batches carry little padding: on a 2-core CPU a step takes a third less time
    (``bench/transformer_batching.py``).
    ``label_smoothing`` softens the cross-entropy targets; ``imbalance`` (components/imbalance.py) weighs the
    classes in the loss or corrects the trained model's answers by the training prior. Uses a GPU when
    one is present.
    """
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    train, validation = pd.read_parquet(train_path), pd.read_parquet(validation_path)
    on_gpu = torch.cuda.is_available()
    seeds = [run.seed + i for i in range(seed_count(config, on_gpu))]
    scale = prior_scale(train["label"].tolist(), config.imbalance)
    params = asdict(config) | {
        "model_family": "transformer",
        "model_source": resolve_model(config.model_id, config.offline_fallback),
        "device": "cuda" if on_gpu else "cpu",
        "threads": torch.get_num_threads(),
        "train_rows": len(train),
        "validation_rows": len(validation),
        "seed_members": ",".join(map(str, seeds)),
    }
    with (
        candidate_run(tracking_uri, run.experiment, "transformer", lineage, params, train) as run_id,
        tempfile.TemporaryDirectory() as tmp,
    ):
        members = [
            fine_tune(train, validation, config, seed, Path(tmp) / f"seed-{seed}" / "model", scale)
            for seed in seeds
        ]
        for seed, member in zip(seeds, members, strict=True):
            _log_training_curve(member.log_history, "" if len(seeds) == 1 else f"_seed_{seed}")
        mlflow.set_tag("stopped_by", ",".join(sorted({m.stopped_by for m in members})))
        folders = [m.folder for m in members]
        model_uri = log_transformer_models(folders, config.max_length, config.batch_size, scale, Path(tmp))
        timings = {
            "train_seconds": sum(m.seconds for m in members),
            "train_steps": sum(m.steps for m in members),
        }
        result = finish_candidate(run_id, model_uri, validation, seed_vote(members, scale), timings)
    logger.info(
        "transformer: %d seed(s), %d steps in %.0f s; validation macro recall %.4f, macro F1 %.4f",
        len(seeds),
        timings["train_steps"],
        timings["train_seconds"],
        result.validation_metrics["macro_recall"],
        result.validation_metrics["macro_f1"],
    )
    return result


@component
def train_transformer(
    train: Input[Dataset],
    validation: Input[Dataset],
    config: dict,
    run: dict,
    tracking_uri: str,
    lineage: str,
    model: Output[Model],
    validation_predictions: Output[Dataset],
    validation_metrics: Output[Metrics],
):
    """Fine-tune a Hugging Face classifier within a budget (params.yaml ``train_transformer``), logged to
    MLflow; the Model artifact points at it."""
    import json

    from components.candidate import record_candidate
    from components.train_transformer import TransformerConfig, train_transformer_model
    from core.config import RunConfig, from_mapping

    result = train_transformer_model(
        train.path,
        validation.path,
        from_mapping(TransformerConfig, config, "train_transformer"),
        from_mapping(RunConfig, run, "run"),
        tracking_uri,
        json.loads(lineage),
    )
    record_candidate(result, "transformer", model, validation_predictions, validation_metrics)
