"""The gate's decision: the contract between the gate step that makes it and everything that reads it (the
deploy step, the pipeline's runners, the Pushgateway reporter, the benchmarks), and
where MLflow keeps it: the tags ``gate.decision`` / ``gate.reason`` on the chosen candidate's run and the
artifact ``gate/gate_decision.json``. Written and read only through this module."""

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DECISION_TAG, REASON_TAG, INT8_TAG = "gate.decision", "gate.reason", "gate.int8"
PROMOTED, REJECTED = "promoted", "rejected"
DECISION_FOLDER, DECISION_FILE = "gate", "gate_decision.json"
DECISION_ARTIFACT = f"{DECISION_FOLDER}/{DECISION_FILE}"


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    metric: str
    weights: dict[str, float]
    run_id: str
    candidate_score: float
    candidate_scores: dict[str, float]
    candidate_set_scores: dict[str, dict[str, float]]
    champion_score: float | None
    champion_version: str | None
    interval: tuple[float, float] | None
    confidence: float
    registered_version: str | None
    int8_loss: float | None
    int8_accepted: bool
    # the rule (components/gate.py): the sets the gain is judged on, each held-out set's gain and
    # interval against the champion [gain, low, high], and which rule decided
    target: list[str] = field(default_factory=list)
    set_comparisons: dict[str, list[float]] = field(default_factory=dict)
    rule: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "GateDecision":
        values = json.loads(text)
        interval = values.get("interval")
        return cls(**{**values, "interval": tuple(interval) if interval is not None else None})


def record_decision(decision: GateDecision) -> None:
    """Keep ``decision`` on the chosen candidate's MLflow run: tags, metrics and the JSON artifact."""
    import mlflow

    with mlflow.start_run(run_id=decision.run_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {DECISION_TAG: PROMOTED if decision.promoted else REJECTED, REASON_TAG: decision.reason}
        )
        mlflow.log_metric(f"gate_score_{decision.metric}", decision.candidate_score)
        if decision.champion_score is not None:
            mlflow.log_metric(f"gate_champion_score_{decision.metric}", decision.champion_score)
        if decision.int8_loss is not None:
            mlflow.log_metric(f"gate_int8_loss_{decision.metric}", decision.int8_loss)
            mlflow.set_tag(INT8_TAG, "accepted" if decision.int8_accepted else "rejected")
        if decision.interval is not None:
            mlflow.log_metrics(
                {"gate_interval_low": decision.interval[0], "gate_interval_high": decision.interval[1]}
            )
        path = Path(tmp) / DECISION_FILE
        path.write_text(decision.to_json())
        mlflow.log_artifact(str(path), DECISION_FOLDER)


def latest_decision(
    tracking_uri: str | None, experiment: str, since: float | None = None
) -> GateDecision | None:
    """The decision of the experiment's most recently started gated run (started at or after ``since``, a
    Unix time, when given); None when there is none."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    started = f" and attributes.start_time >= {int(since * 1000)}" if since is not None else ""
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{DECISION_TAG}` != ''{started}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    return GateDecision.from_json(
        Path(client.download_artifacts(runs[0].info.run_id, DECISION_ARTIFACT)).read_text()
    )
