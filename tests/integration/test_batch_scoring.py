"""The batch-scoring pipeline under kfp.local, end to end on real parts: a corpus with bad rows in S3
(moto_server), the production registry (a copy of the TF-IDF champion's, plus a version that fails its
first call: tests/canary_models.py), several shards scored two at a time, one shard failing once and
retried, the output in S3 checked row by row against the predictor's answers for the same texts."""

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from components.batch_score import BATCH_EXPERIMENT, SUCCESS_MARKER, BatchInputError, plan_batch, read_scores
from core import storage
from core.labels import probability_columns
from pipelines.batch import batch_arguments, batch_pipeline
from pipelines.task_settings import Retry
from tests import canary_models
from tests.helpers import PARAMS, sentiment_frame
from tests.registry import RegistryServer, make_bucket

SHARD_ROWS = 50
QUICK_RETRIES = replace(
    PARAMS.cluster, retry=Retry(retries=2, backoff_seconds=1, backoff_factor=1.0, max_backoff_seconds=1)
)
BAD_ROWS = {  # comment_id -> (text, the reason it is quarantined)
    "empty": ("   ", "missing_text"),
    "long": ("word " * 1200, "too_long"),
    "bytes": (None, "invalid_utf8"),  # written as raw undecodable bytes
    "c0": ("a second row with the id c0", "duplicate_id"),
}


def write_corpus(path: Path) -> pd.DataFrame:
    """A CSV of 144 texts with ids c0..c143, the rows of BAD_ROWS and a row without an id; returns the
    good rows."""
    good = pd.DataFrame({"comment_id": [f"c{i}" for i in range(144)], "comment": sentiment_frame()["text"]})
    lines = [good.to_csv(index=False).encode().rstrip(b"\n")]
    for row_id, (text, _) in BAD_ROWS.items():
        lines.append(f"{row_id},".encode() + (f'"{text}"'.encode() if text else b"caf\xe9 \xff"))
    lines.append(b',"a row without an id"')  # missing_id
    path.write_bytes(b"\n".join(lines) + b"\n")
    return good


@pytest.fixture(scope="module")
def registry(fast_champion_registry: RegistryServer, tmp_path_factory):
    """A copy of the TF-IDF champion's registry with version 2: version 1 behind FailsFirstCall."""
    server = fast_champion_registry.copy(tmp_path_factory.mktemp("batch-registry"))
    try:
        mlflow.set_tracking_uri(server.url)
        mlflow.set_experiment("test-models")
        version = canary_models.register(canary_models.FailsFirstCall(), "models:/sentiment/1", "sentiment")
        assert version == "2"
        yield server
    finally:
        server.stop()


def predictor_answers(url: str, texts: list[str]) -> pd.DataFrame:
    """The predictor at ``url``'s answers (v1 protocol, requests of 16 texts) for ``texts``."""
    rows = []
    for start in range(0, len(texts), 16):
        body = {"instances": texts[start : start + 16]}
        response = requests.post(f"{url}/v1/models/sentiment:predict", json=body, timeout=30)
        response.raise_for_status()
        rows += response.json()["predictions"]
    return pd.DataFrame(
        [{"label": row["label"], **{f"prob_{k}": v for k, v in row["probabilities"].items()}} for row in rows]
    )


def test_the_batch_pipeline_scores_a_corpus_like_the_predictor(
    registry: RegistryServer,
    fast_model_server: str,
    kfp_local: Path,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch,
) -> None:
    """Scored with version 2 (version 1's model behind FailsFirstCall), compared with the session's
    predictor serving version 1 of the registry this one copies: the same model, in FP32."""
    make_bucket(s3_endpoint, "corpora")
    good = write_corpus(tmp_path / "comments.csv")
    corpus = "s3://corpora/in/comments.csv"
    storage.write_bytes(corpus, (tmp_path / "comments.csv").read_bytes())
    output = "s3://corpora/out/comments-scored"
    storage.write_bytes(storage.join(output, "scores", "part-00009.parquet"), b"a previous run's")
    monkeypatch.setenv(canary_models.FAULT_MARKER_ENV, str(tmp_path / "fault-happened"))
    # the steps get the registry as an argument: nothing may come from the environment (a user's has none)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = PARAMS.override("batch_score", id_column="comment_id", shard_rows=SHARD_ROWS)

    task = batch_pipeline(QUICK_RETRIES, parallelism=2)(
        **batch_arguments(params, corpus, output, "models:/sentiment/2", registry.url)
    )

    summary = json.loads(task.output)
    shards = -(-len(good) // SHARD_ROWS)  # 3: 50, 50, 44
    assert summary["rows_in"] == len(good) + len(BAD_ROWS) + 1 and summary["rows_scored"] == len(good)
    expected_quarantine = {reason: 1 for _, reason in BAD_ROWS.values()} | {"missing_id": 1}
    assert summary["quarantined"] == expected_quarantine and summary["rows_quarantined"] == 5
    assert [shard["rows"] for shard in summary["shards"]] == [50, 50, 44]
    assert summary["failed_attempts"] == 1 and len(summary["retried_shards"]) == 1  # FailsFirstCall, retried
    assert summary["model"] == {
        "uri": "models:/sentiment/2", "name": "sentiment", "version": "2", "runtime": "fp32",
        "why": "the model has no INT8 runtime",
    }  # fmt: skip
    assert summary["input_sha256"] == hashlib.sha256((tmp_path / "comments.csv").read_bytes()).hexdigest()

    assert storage.exists(storage.join(output, SUCCESS_MARKER))
    assert not storage.list_files(storage.join(output, "_staging"))
    parts = storage.list_files(storage.join(output, "scores"))
    assert [Path(p).name for p in parts] == [f"part-{i:05d}.parquet" for i in range(shards)]  # none stale
    scores = read_scores(output)
    assert scores["row_id"].tolist() == good["comment_id"].tolist()
    assert set(scores["model_version"]) == {"2"}
    quarantine = storage.read_parquet(storage.join(output, "quarantine.parquet"))
    assert sorted(quarantine["reason"]) == sorted(expected_quarantine)

    answers = predictor_answers(fast_model_server, good["comment"].tolist())
    assert scores["label"].tolist() == answers["label"].tolist()
    expected = answers[probability_columns()].to_numpy()
    assert np.allclose(scores[probability_columns()].to_numpy(), expected, atol=1e-6)
    shares = scores["label"].value_counts(normalize=True)
    assert summary["class_shares"] == pytest.approx(shares.to_dict(), abs=1e-6)

    client = mlflow.MlflowClient(registry.url)
    [run] = client.search_runs([client.get_experiment_by_name(BATCH_EXPERIMENT).experiment_id])
    assert run.info.run_id == summary["mlflow_run_id"]
    assert run.data.params["input_sha256"] == summary["input_sha256"]
    assert run.data.params["model_version"] == "2" and run.data.metrics["failed_attempts"] == 1
    assert [i.dataset.digest for i in run.inputs.dataset_inputs] == [summary["input_sha256"][:32]]


def test_a_corpus_with_nothing_to_score_is_refused_before_anything_is_written(
    registry: RegistryServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "blank.csv"
    # quoted: unquoted, pandas reads a line of blanks as no row at all
    pd.DataFrame({"text": ["  ", " \t "]}).to_csv(corpus, index=False, quoting=csv.QUOTE_ALL)
    output = tmp_path / "out"
    with pytest.raises(BatchInputError, match="none of its 2 rows can be scored"):
        plan_batch(
            str(corpus), str(output), "models:/sentiment@champion", PARAMS.batch_score, 5000, registry.url
        )
    with pytest.raises(BatchInputError, match="takes a registry version"):
        plan_batch(str(corpus), str(output), "runs:/abc/model", PARAMS.batch_score, 5000, registry.url)
    assert not output.exists()
