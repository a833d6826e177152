"""gate: register the candidate and move the ``champion`` alias to it only when it beats the current
champion on the same test set by a margin (a first model must pass an absolute floor).

Safety: the alias moves last, in one registry call, and only to a version whose run holds test metrics
for this test set; a crash at any point leaves the previous champion in place.
"""

import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from components.evaluate import TEST_DIGEST_TAG, dataset_digest, score_model
from components.tracking import use_tracking

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"


class GateError(RuntimeError):
    """The candidate cannot be judged (e.g. it was not evaluated on this test set)."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    metric: str
    candidate_score: float
    champion_score: float | None
    champion_version: str | None
    registered_version: str | None


def current_champion(client: mlflow.MlflowClient, model_name: str):
    """The version the ``champion`` alias points at, or None when there is none yet."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def decide(
    candidate: float, champion: float | None, min_improvement: float, min_score: float
) -> tuple[bool, str]:
    """The rule: pass the floor, and beat the champion (if any) by at least ``min_improvement``."""
    if candidate < min_score:
        return False, f"score {candidate:.4f} is below the floor {min_score:.4f}"
    if champion is None:
        return True, f"first model: score {candidate:.4f} passes the floor {min_score:.4f}"
    gain = candidate - champion
    if gain > 0 and gain >= min_improvement:
        return True, f"beats the champion by {gain:+.4f} (margin {min_improvement:.4f})"
    return False, f"does not beat the champion: {gain:+.4f} (margin {min_improvement:.4f})"


def _candidate_score(client: mlflow.MlflowClient, run_id: str, metric: str, digest: str) -> float:
    run = client.get_run(run_id)
    score = run.data.metrics.get(f"test_{metric}")
    if score is None or run.data.tags.get(TEST_DIGEST_TAG) != digest:
        raise GateError(f"run {run_id} has no test_{metric} for this test set: evaluate it first")
    return score


def _log_decision(run_id: str, decision: GateDecision) -> None:
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {"gate.decision": "promoted" if decision.promoted else "rejected", "gate.reason": decision.reason}
        )
        if decision.champion_score is not None:
            mlflow.log_metric(f"gate_champion_test_{decision.metric}", decision.champion_score)
        path = Path(tmp) / "gate_decision.json"
        path.write_text(json.dumps(asdict(decision), indent=2))
        mlflow.log_artifact(str(path), "gate")


def gate(
    run_id: str,
    model_uri: str,
    test_path: str,
    tracking_uri: str,
    model_name: str,
    metric: str = "macro_recall",
    min_improvement: float = 0.0,
    min_score: float = 0.4,
) -> GateDecision:
    """Judge the candidate ``model_uri`` (logged by run ``run_id``) and promote it if it wins."""
    use_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    test = pd.read_parquet(test_path)
    candidate = _candidate_score(client, run_id, metric, dataset_digest(test))
    champion = current_champion(client, model_name)
    champion_score = None
    if champion is not None:
        champion_metrics, _ = score_model(f"models:/{model_name}/{champion.version}", test)
        champion_score = champion_metrics[metric]
    promoted, reason = decide(candidate, champion_score, min_improvement, min_score)
    registered = None
    if promoted:
        version = mlflow.register_model(
            model_uri,
            model_name,
            tags={"gate": "pending", f"test_{metric}": f"{candidate:.6f}", "run_id": run_id},
        )
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
        client.set_model_version_tag(model_name, version.version, "gate", "promoted")
        registered = str(version.version)
    decision = GateDecision(
        promoted,
        reason,
        metric,
        candidate,
        champion_score,
        str(champion.version) if champion else None,
        registered,
    )
    _log_decision(run_id, decision)
    logger.info("gate: %s (%s)", "PROMOTED" if promoted else "rejected", reason)
    return decision
