"""A serving bundle: what a predictor needs to serve one registered version without an MLflow server, in
one folder that KServe's storage initializer downloads to /mnt/models (``STORAGE_URI``). It is the
version's MLflow model directory plus ``serving.json``: model name and version, the run it came from, the
gate's INT8 verdict, the pipeline's offline scores and the drift reference.

Published by the deploy step under ``<root>/<name>/<version>/`` (an ``s3://`` prefix on the cluster, a
folder in tests); immutable once written.
"""

import json
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core import storage

BUNDLE_FILE = "serving.json"
# The pipeline's scores of a version that the predictor exports (sentiment_model_offline_score{metric}).
OFFLINE_METRICS = re.compile(r"test_(macro_recall|macro_f1|accuracy)|ood_.+_macro_recall|gate_score_.+")


@dataclass(frozen=True)
class VersionDetails:
    """What the predictor reports and monitors about the version it serves."""

    name: str
    version: str
    run_id: str | None
    int8_accepted: bool | None
    offline_scores: dict[str, float]
    drift_reference: str | None  # DriftReference JSON

    @classmethod
    def from_registry(cls, name: str, version: str) -> "VersionDetails":
        """From MLflow: the version's tags, its run's metrics and the drift reference evaluate logged."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from core.artifacts import REFERENCE_ARTIFACT

        client = mlflow.MlflowClient()
        registered = client.get_model_version(name, version)
        accepted = registered.tags.get("int8_accepted")
        scores, reference = {}, None
        if registered.run_id:
            logged = client.get_run(registered.run_id).data.metrics
            scores = {metric: value for metric, value in logged.items() if OFFLINE_METRICS.fullmatch(metric)}
            try:
                reference = mlflow.artifacts.load_text(f"runs:/{registered.run_id}/{REFERENCE_ARTIFACT}")
            except (MlflowException, OSError):
                reference = None
        return cls(
            name,
            str(version),
            registered.run_id,
            None if accepted is None else accepted == "true",
            scores,
            reference,
        )

    @classmethod
    def from_bundle(cls, folder: Path) -> "VersionDetails":
        return cls(**json.loads((Path(folder) / BUNDLE_FILE).read_text()))


def is_bundle(path: str) -> bool:
    """True for a local folder holding a serving bundle."""
    return (Path(path) / BUNDLE_FILE).is_file()


def bundle_uri(root: str, name: str, version: str) -> str:
    """The bundle's folder, with a trailing slash: KServe's storage initializer downloads every key that
    starts with the URI (kserve-storage ``_download_s3``, a prefix listing), so without it version 1 would
    also fetch versions 10, 11, ... into /mnt/models."""
    return f"{root.rstrip('/')}/{name}/{version}/"


def publish_bundle(root: str, name: str, version: str) -> str:
    """Write the bundle of registered version ``version`` of ``name`` under ``root`` (``s3://`` prefix or
    folder) unless it is there already; return its URI (the predictor's ``STORAGE_URI``)."""
    import mlflow

    uri = bundle_uri(root, name, version)
    if storage.exists(uri + BUNDLE_FILE):
        return uri
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp))
        details = VersionDetails.from_registry(name, version)
        (folder / BUNDLE_FILE).write_text(json.dumps(asdict(details), indent=1))
        _copy_folder(folder, uri)
    return uri


def _copy_folder(folder: Path, uri: str) -> None:
    """Copy ``folder`` to ``uri``, ``serving.json`` last, so that a bundle with it is complete."""
    files = sorted(folder.rglob("*"), key=lambda path: path.name == BUNDLE_FILE)
    for path in files:
        if path.is_file():
            storage.put_file(path, uri + path.relative_to(folder).as_posix())
