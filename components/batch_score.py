"""Batch scoring: label a whole corpus (a CSV, TSV, parquet or JSON-lines file with a text column, local or
``s3://``) with one pinned registry version, in three steps the batch pipeline fans out over KFP:

- plan: read the corpus, quarantine the rows that cannot be scored (with a reason each), pin the model
  version and the runtime the gate accepted for it, cut the rest into shards; one work order per shard;
- score: score one shard (the pipeline runs several at once, ``dsl.ParallelFor``); every attempt is
  recorded, so a shard that failed and was retried is reported;
- publish: check that every shard's part is there, move the parts into the output with the quarantine and
  a summary, log the run to MLflow, and write ``_SUCCESS`` last.

The output (a folder or an ``s3://`` prefix)::

    scores/part-00000.parquet ...  row_id, label, prob_negative, prob_neutral, prob_positive, model_version
    quarantine.parquet             row_id, text, reason: the rows not scored
    summary.json                   counts, class shares, throughput, rows and attempts per shard, lineage
    _SUCCESS                       written last; an output without it is incomplete (read_scores refuses it)

Work in progress lives under ``<output>/_staging/<token>/`` until publish removes it; a failed run leaves
it there for inspection and no ``_SUCCESS``.
"""

import hashlib
import json
import logging
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from components import component
from core import storage
from core.config import from_mapping
from core.labels import LABELS, probability_columns

logger = logging.getLogger(__name__)

BATCH_EXPERIMENT = "sentiment-batch-scoring"
SUCCESS_MARKER = "_SUCCESS"
STAGING = "_staging"
# Why a row is not scored, in the order they are checked: the text checks validate applies to training
# rows, then, with an id column, a missing or repeated id (the first row with an id is scored).
QUARANTINE_REASONS = ("missing_text", "invalid_utf8", "too_long", "missing_id", "duplicate_id")


class BatchInputError(ValueError):
    """The corpus or the model cannot be scored as asked; the message says why."""


class IncompleteOutput(RuntimeError):
    """A batch output without ``_SUCCESS``, or whose parts do not add up: not to be read as whole."""


@dataclass(frozen=True)
class BatchConfig:
    """params.yaml ``batch_score``: see the comments there."""

    text_column: str | None
    id_column: str | None
    shard_rows: int
    parallelism: int
    batch_size: int
    runtime: str


def read_corpus(uri: str, text_column: str | None, id_column: str | None) -> tuple[pd.DataFrame, str]:
    """The corpus at ``uri`` as columns row_id (the id column's values, or the row's position from 0) and
    text, and the SHA-256 of the file read."""
    from components.ingest import TABLE_SUFFIXES, TEXT_COLUMNS, pick_column, read_table

    suffix = Path(uri.rstrip("/")).suffix
    if suffix not in TABLE_SUFFIXES:
        raise BatchInputError(
            f"{uri}: unsupported file type {suffix!r} (use one of {sorted(TABLE_SUFFIXES)})"
        )
    if not storage.exists(uri):
        raise BatchInputError(f"{uri}: no such file")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / f"corpus{suffix}"
        local.write_bytes(storage.read_bytes(uri))
        with local.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        frame = read_table(local)
    columns = [str(c) for c in frame.columns]
    text = text_column or pick_column(columns, TEXT_COLUMNS, "text")
    for wanted in filter(None, (text, id_column)):
        if wanted not in columns:
            raise BatchInputError(f"{uri}: no column {wanted!r}; its columns are {columns}")
    ids = frame[id_column].astype("string") if id_column else pd.Series(range(len(frame))).astype("string")
    return pd.DataFrame({"row_id": ids.to_numpy(), "text": frame[text].astype("string").to_numpy()}), digest


def quarantine_reasons(corpus: pd.DataFrame, max_text_chars: int, has_ids: bool) -> pd.Series:
    """Each row's reason not to be scored ("" for a row to score)."""
    from components.validate import first_failed, text_checks

    ids = corpus["row_id"].astype("string")
    no_id = ids.isna() | (ids.str.strip().fillna("") == "")
    checks = {
        **text_checks(corpus["text"], max_text_chars),
        "missing_id": no_id & has_ids,
        "duplicate_id": ids.duplicated(keep="first") & ~no_id & has_ids,
    }
    return first_failed(checks, QUARANTINE_REASONS)


@dataclass(frozen=True)
class PinnedModel:
    """The registry version a batch scores with, and the runtime it runs in (and why)."""

    uri: str  # models:/<name>/<version>
    name: str
    version: str
    runtime: str
    why: str


@dataclass(frozen=True)
class BatchPlan:
    """What plan writes to ``<staging>/plan.json`` and publish reads back: the corpus, the output, the
    counts, the pinned model and the shards."""

    input: str
    input_sha256: str
    output: str
    rows_in: int
    rows_quarantined: int
    quarantined: dict[str, int]
    model: PinnedModel
    shards: int
    shard_rows: int
    started_at: float

    def write(self, staging: str) -> None:
        storage.write_bytes(storage.join(staging, "plan.json"), json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def read(cls, staging: str) -> "BatchPlan":
        data = json.loads(storage.read_bytes(storage.join(staging, "plan.json")))
        return cls(**{**data, "model": PinnedModel(**data["model"])})


@dataclass(frozen=True)
class WorkOrder:
    """One shard to score: what plan hands each score task (through KFP as a dict: :func:`work_order`)."""

    index: int
    rows: int
    shard: str
    part: str
    attempts: str  # a mark per attempt, so publish can tell which shards were retried
    staging: str
    model_uri: str
    model_version: str
    tracking_uri: str  # the registry a shard loads the model from
    runtime: str


@dataclass(frozen=True)
class ShardResult:
    """What a score task hands publish (through KFP as a dict: :func:`shard_result`)."""

    index: int
    rows: int
    part: str
    attempts: str
    staging: str
    load_seconds: float
    scoring_seconds: float


def work_order(values: dict) -> WorkOrder:
    """A work order from the dict KFP passes (its numbers arrive as floats)."""
    return from_mapping(WorkOrder, values, "a batch work order")


def shard_result(values: dict) -> ShardResult:
    """A shard's result from the dict KFP passes (its numbers arrive as floats)."""
    return from_mapping(ShardResult, values, "a batch shard result")


def pin_model(model_uri: str, requested_runtime: str) -> PinnedModel:
    """Resolve ``model_uri`` (``models:/<name>@<alias>`` or ``/<version>``) to one version and choose its
    runtime as the predictor does (models/runtime_choice.py)."""
    from core.registry import is_registry_uri, resolve
    from models.bundle import VersionDetails
    from models.runtime_choice import choose_runtime, has_int8_runtime

    if not is_registry_uri(model_uri):
        raise BatchInputError(
            f"{model_uri!r}: batch scoring takes a registry version (models:/<name>@<alias> or "
            "models:/<name>/<version>), so its output names the version that scored it"
        )
    version = resolve(model_uri)
    pinned = f"models:/{version.name}/{version.version}"
    details = VersionDetails.from_registry(version.name, str(version.version))
    runtime, why = choose_runtime(details, requested_runtime, has_int8_runtime(pinned))
    return PinnedModel(pinned, version.name, str(version.version), runtime, why)


def plan_batch(
    input_uri: str,
    output_uri: str,
    model_uri: str,
    config: BatchConfig,
    max_text_chars: int,
    tracking_uri: str,
) -> list[WorkOrder]:
    """Read and check the corpus, pin the model, write the shards and the quarantine under a new staging
    folder of ``output_uri``; return one work order per shard."""
    import mlflow

    started = time.time()
    if config.shard_rows < 1:
        raise BatchInputError(f"batch_score.shard_rows must be at least 1, got {config.shard_rows}")
    mlflow.set_tracking_uri(tracking_uri)
    model = pin_model(model_uri, config.runtime)
    corpus, digest = read_corpus(input_uri, config.text_column, config.id_column)
    reason = quarantine_reasons(corpus, max_text_chars, has_ids=bool(config.id_column))
    bad = reason != ""
    clean = corpus[~bad].reset_index(drop=True)
    if clean.empty:
        raise BatchInputError(f"{input_uri}: none of its {len(corpus)} rows can be scored")
    staging = storage.join(output_uri, STAGING, uuid.uuid4().hex)
    storage.write_parquet(corpus[bad].assign(reason=reason[bad]), storage.join(staging, "quarantine.parquet"))
    counts = reason[bad].value_counts()
    starts = range(0, len(clean), config.shard_rows)
    plan = BatchPlan(
        input=input_uri,
        input_sha256=digest,
        output=output_uri,
        rows_in=len(corpus),
        rows_quarantined=int(bad.sum()),
        quarantined={name: int(counts.get(name, 0)) for name in QUARANTINE_REASONS},
        model=model,
        shards=len(starts),
        shard_rows=config.shard_rows,
        started_at=started,
    )
    plan.write(staging)
    orders = []
    for index, start in enumerate(starts):
        rows = clean.iloc[start : start + config.shard_rows]
        shard = storage.join(staging, "shards", f"shard-{index:05d}.parquet")
        storage.write_parquet(rows, shard)
        orders.append(
            WorkOrder(
                index=index,
                rows=len(rows),
                shard=shard,
                part=storage.join(staging, "parts", f"part-{index:05d}.parquet"),
                attempts=storage.join(staging, "attempts", f"shard-{index:05d}"),
                staging=staging,
                model_uri=model.uri,
                model_version=model.version,
                tracking_uri=tracking_uri,
                runtime=model.runtime,
            )
        )
    logger.info(
        "planned %d shards of at most %d rows from %s (%d rows, %d quarantined: %s); "
        "%s version %s in %s (%s)",
        len(orders), config.shard_rows, input_uri, len(corpus), plan.rows_quarantined,
        plan.quarantined, model.name, model.version, model.runtime, model.why,
    )  # fmt: skip
    return orders


def score_frame(model, texts: list[str], batch_size: int, desc: str) -> pd.DataFrame:
    """The model's answers (label and probabilities) for ``texts``, ``batch_size`` at a time."""
    from tqdm.auto import tqdm

    answers = []
    with tqdm(total=len(texts), desc=desc, unit="text") as progress:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            answers.append(model.predict(pd.DataFrame({"text": batch}))[["label", *probability_columns()]])
            progress.update(len(batch))
    return pd.concat(answers, ignore_index=True)


def score_shard(order: WorkOrder, batch_size: int) -> ShardResult:
    """Score the shard of one work order (from :func:`plan_batch`) and write its part; every attempt
    first leaves a mark under the order's ``attempts``, so publish can tell which shards were retried."""
    import mlflow

    from models.runtime_choice import load_in_runtime

    mlflow.set_tracking_uri(order.tracking_uri)  # the plan's registry, not the environment's
    storage.write_bytes(storage.join(order.attempts, uuid.uuid4().hex), b"")
    started = time.perf_counter()
    model = load_in_runtime(order.model_uri, order.runtime)
    loaded = time.perf_counter()
    shard = storage.read_parquet(order.shard)
    answers = score_frame(model, shard["text"].tolist(), batch_size, f"shard {order.index}")
    part = pd.concat([shard[["row_id"]].reset_index(drop=True), answers], axis=1)
    part["model_version"] = order.model_version
    storage.write_parquet(part, order.part)
    scoring_seconds = time.perf_counter() - loaded
    logger.info("shard %d: %d rows in %.1f s (%.0f rows/s)", order.index, len(part), scoring_seconds,
                len(part) / scoring_seconds)  # fmt: skip
    return ShardResult(
        index=order.index,
        rows=len(part),
        part=order.part,
        attempts=order.attempts,
        staging=order.staging,
        load_seconds=round(loaded - started, 3),
        scoring_seconds=round(scoring_seconds, 3),
    )


def check_parts(plan: BatchPlan, results: list[ShardResult]) -> None:
    """Raise IncompleteOutput unless every planned shard has exactly one result and its part holds the
    rows planned."""
    indexes = sorted(result.index for result in results)
    if indexes != list(range(plan.shards)):
        raise IncompleteOutput(f"expected results for shards 0..{plan.shards - 1}, got {indexes}")
    scored = sum(result.rows for result in results)
    expected = plan.rows_in - plan.rows_quarantined
    if scored != expected:
        raise IncompleteOutput(f"the shards scored {scored} rows, the plan has {expected} to score")
    missing = [result.part for result in results if not storage.exists(result.part)]
    if missing:
        raise IncompleteOutput(f"parts missing: {missing}")


def class_shares(parts: list[str]) -> dict[str, float]:
    counts = pd.Series(0, index=list(LABELS))
    for part in parts:
        counts = counts.add(storage.read_parquet(part)["label"].value_counts(), fill_value=0)
    total = counts.sum()
    return {label: round(float(counts[label] / total), 6) for label in LABELS}


def publish_batch(results: list[ShardResult], tracking_uri: str) -> dict:
    """Check the shards' results against the plan, replace the output's scores, quarantine and summary
    with this run's, log the run to MLflow (experiment ``sentiment-batch-scoring``) and write ``_SUCCESS``
    last; return the summary."""
    import mlflow

    from core.lineage import log_sources, source_name

    if not results:
        raise IncompleteOutput("no shard results to publish")
    results = sorted(results, key=lambda r: r.index)
    staging = results[0].staging
    plan = BatchPlan.read(staging)
    check_parts(plan, results)
    output, model = plan.output, plan.model
    attempts = {result.index: len(storage.list_files(result.attempts)) for result in results}
    for name in (SUCCESS_MARKER, "scores", "quarantine.parquet", "summary.json"):  # the last run's
        storage.delete(storage.join(output, name))
    parts = []
    for result in results:
        parts.append(storage.join(output, "scores", f"part-{result.index:05d}.parquet"))
        storage.copy(result.part, parts[-1])
    storage.copy(storage.join(staging, "quarantine.parquet"), storage.join(output, "quarantine.parquet"))
    rows = sum(result.rows for result in results)
    scoring_seconds = sum(result.scoring_seconds for result in results)
    wall_seconds = time.time() - plan.started_at
    summary = {
        "input": plan.input,
        "input_sha256": plan.input_sha256,
        "model": asdict(model),
        "rows_in": plan.rows_in,
        "rows_scored": rows,
        "rows_quarantined": plan.rows_quarantined,
        "quarantined": plan.quarantined,
        "class_shares": class_shares(parts),
        "shards": [
            {
                "index": r.index,
                "rows": r.rows,
                "load_seconds": r.load_seconds,
                "scoring_seconds": r.scoring_seconds,
            }
            | {"attempts": attempts[r.index]}
            for r in results
        ],
        "failed_attempts": sum(count - 1 for count in attempts.values()),
        "retried_shards": sorted(index for index, count in attempts.items() if count > 1),
        "rows_per_second": round(rows / wall_seconds, 1),  # end to end: plan start to publish
        "rows_per_second_per_shard": round(rows / scoring_seconds, 1),  # model time only
        "wall_seconds": round(wall_seconds, 1),
    }
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(BATCH_EXPERIMENT)
    with mlflow.start_run(run_name=f"batch-{source_name(plan.input)}") as run:
        mlflow.log_params(
            {"input": plan.input, "input_sha256": plan.input_sha256, "output": output,
             "model_uri": model.uri, "model_version": model.version, "runtime": model.runtime,
             "shards": plan.shards, "shard_rows": plan.shard_rows}
        )  # fmt: skip
        mlflow.set_tags({"model_name": model.name, "model_version": model.version})
        mlflow.log_metrics(
            {"rows_in": plan.rows_in, "rows_scored": rows, "rows_quarantined": plan.rows_quarantined,
             "failed_attempts": summary["failed_attempts"], "rows_per_second": summary["rows_per_second"],
             "rows_per_second_per_shard": summary["rows_per_second_per_shard"],
             **{f"quarantined_{name}": count for name, count in plan.quarantined.items()},
             **{f"share_{label}": share for label, share in summary["class_shares"].items()}}
        )  # fmt: skip
        source = {"name": source_name(plan.input), "uri": plan.input, "digest": plan.input_sha256}
        log_sources([source], context="batch_scoring")
        mlflow.log_dict(summary, "summary.json")
    summary["mlflow_run_id"] = run.info.run_id
    storage.write_bytes(storage.join(output, "summary.json"), json.dumps(summary, indent=2).encode())
    storage.write_bytes(storage.join(output, SUCCESS_MARKER), run.info.run_id.encode())
    storage.delete(staging)
    logger.info("published %d scored rows to %s (%d quarantined, %d failed attempts retried)",
                rows, output, plan.rows_quarantined, summary["failed_attempts"])  # fmt: skip
    return summary


def read_scores(output_uri: str) -> pd.DataFrame:
    """Every scored row of a published batch output; IncompleteOutput when it has no ``_SUCCESS``."""
    if not storage.exists(storage.join(output_uri, SUCCESS_MARKER)):
        raise IncompleteOutput(f"{output_uri} has no {SUCCESS_MARKER}: the batch did not finish publishing")
    parts = storage.list_files(storage.join(output_uri, "scores"))
    return pd.concat([storage.read_parquet(part) for part in parts], ignore_index=True)


@component
def batch_plan(
    input_uri: str,
    output_uri: str,
    model_uri: str,
    config: dict,
    validate: dict,
    tracking_uri: str,
) -> list:
    """Check the corpus, pin the model version, cut the shards; one work order per shard."""
    from dataclasses import asdict

    from components.batch_score import BatchConfig, plan_batch
    from components.validate import ValidateConfig
    from core.config import from_mapping

    settings = from_mapping(BatchConfig, config, "batch_score")
    max_text_chars = from_mapping(ValidateConfig, validate, "validate").max_text_chars
    orders = plan_batch(input_uri, output_uri, model_uri, settings, max_text_chars, tracking_uri)
    return [asdict(order) for order in orders]


@component
def batch_score(order: dict, config: dict) -> dict:
    """Score one shard (a work order of batch_plan)."""
    from dataclasses import asdict

    from components.batch_score import BatchConfig, score_shard, work_order
    from core.config import from_mapping

    batch_size = from_mapping(BatchConfig, config, "batch_score").batch_size
    return asdict(score_shard(work_order(order), batch_size))


@component
def batch_publish(results: list, tracking_uri: str) -> str:
    """Publish the scored shards with the quarantine and the summary; return the summary as JSON."""
    import json

    from components.batch_score import publish_batch, shard_result

    return json.dumps(publish_batch([shard_result(result) for result in results], tracking_uri))
