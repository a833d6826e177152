"""The KServe way of loading a model: the deploy step publishes a registered version's serving bundle to
S3 (moto), KServe's own storage-initializer code (kserve-storage, ``Storage.download_files``, what the
init container's entrypoint calls) downloads it with the env KServe's credential builder sets, and the
predictor serves it from that folder through ``STORAGE_URI`` with no MLflow server reachable."""

import io
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from core.artifacts import REFERENCE_ARTIFACT
from models.bundle import BUNDLE_FILE, VersionDetails, publish_bundle
from tests.conftest import empty_s3
from tests.helpers import HTTP, metric_value, scrape_metrics, start_model_server, stop_process
from tests.registry import S3_CREDENTIALS, s3_client

TEXTS = ["I love the new phone!", "awful experience with my flight", "the concert is scheduled for 5pm"]
UNREACHABLE_MLFLOW = "http://127.0.0.1:9"  # discard port: any MLflow call would fail


@pytest.fixture(scope="module")
def published(champion_store: str, scratch_s3: str, tmp_path_factory) -> tuple[str, Path]:
    """Version 1's bundle published to s3://serving-bundles (the session's scratch S3, emptied first) beside
    a version 10, then downloaded as the init container does; once for the module."""
    from kserve_storage import Storage

    empty_s3(scratch_s3)
    with pytest.MonkeyPatch.context() as patch:  # what KServe's credential builder sets
        patch.setenv("AWS_ENDPOINT_URL", f"http://{scratch_s3}")
        for name, value in S3_CREDENTIALS.items():
            patch.setenv(name, value)
        mlflow.set_tracking_uri(champion_store)
        s3_client().make_bucket("serving-bundles")
        s3_client().put_object("serving-bundles", "models/sentiment/10/serving.json", io.BytesIO(b"{}"), 2)
        uri = publish_bundle("s3://serving-bundles/models", "sentiment", "1")
        assert uri == "s3://serving-bundles/models/sentiment/1/"  # a folder: not a prefix of version 10
        mounted = tmp_path_factory.mktemp("bundle") / "mnt-models"
        Storage.download_files([uri], [str(mounted)])
        yield uri, mounted


def test_a_bundle_carries_the_model_its_version_scores_and_drift_reference(published, champion_store) -> None:
    uri, mounted = published
    details = VersionDetails.from_bundle(mounted)
    registered = mlflow.MlflowClient(champion_store).get_model_version("sentiment", "1")
    assert (details.name, details.version, details.run_id) == ("sentiment", "1", registered.run_id)
    assert (
        "test_int8_macro_recall"
        in mlflow.MlflowClient(champion_store).get_run(registered.run_id).data.metrics
    )
    assert details.int8_accepted is (registered.tags["int8_accepted"] == "true")  # the gate's verdict
    assert details.offline_scores["test_macro_recall"] == pytest.approx(
        mlflow.MlflowClient(champion_store).get_run(registered.run_id).data.metrics["test_macro_recall"]
    )
    reference = mlflow.artifacts.load_text(f"runs:/{registered.run_id}/{REFERENCE_ARTIFACT}")
    assert json.loads(details.drift_reference) == json.loads(reference)
    assert (mounted / "MLmodel").is_file()
    assert not (mounted / "0").exists()  # version 10's keys share the prefix "sentiment/1"
    objects = list(s3_client().list_objects("serving-bundles", prefix="models/sentiment/1/", recursive=True))
    assert publish_bundle("s3://serving-bundles/models", "sentiment", "1") == uri  # already there: kept
    again = list(s3_client().list_objects("serving-bundles", prefix="models/sentiment/1/", recursive=True))
    assert [o.last_modified for o in again] == [o.last_modified for o in objects]
    assert f"models/sentiment/1/{BUNDLE_FILE}" in {o.object_name for o in objects}


def test_the_predictor_serves_the_downloaded_bundle_without_mlflow(published, tmp_path: Path) -> None:
    _, mounted = published
    runtime = "int8" if VersionDetails.from_bundle(mounted).int8_accepted else "fp32"  # the gate's verdict
    model = mlflow.pyfunc.load_model("models:/sentiment/1", model_config={"runtime": runtime})
    expected = model.predict(pd.DataFrame({"text": TEXTS}))
    process, url, _ = start_model_server(
        UNREACHABLE_MLFLOW,
        tmp_path / "server.log",
        extra_args=("--drift_min_texts", "3"),
        env={"STORAGE_URI": str(mounted), "MODEL_URI": "models:/sentiment@nonexistent"},
    )
    try:
        answer = HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": TEXTS}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == expected["label"].tolist()
        assert answer.json()["model_version"] == "1"
        samples = scrape_metrics(url)
        info = [labels for (name, labels) in samples if name == "sentiment_model_info"]
        assert dict(info[0])["version"] == "1" and dict(info[0])["runtime"] == runtime
        assert metric_value(samples, "sentiment_model_offline_score", metric="test_macro_recall") > 0.5
        assert ("sentiment_drift_psi", (("feature", "confidence"),)) in samples, "no drift reference"
    finally:
        stop_process(process)
