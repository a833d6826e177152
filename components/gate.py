"""gate: pick the best evaluated candidate and move the ``champion`` alias to it only when it beats the
current champion on the same test set by a margin, and the paired-bootstrap confidence interval of the
difference excludes zero (a first model must pass an absolute floor).

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

from components.evaluate import TEST_DIGEST_TAG, dataset_digest, logged_predictions, predict_labels
from components.metrics import paired_bootstrap
from components.model_card import MODEL_CARD_ARTIFACT
from components.tracking import use_tracking

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"


class GateError(RuntimeError):
    """A candidate cannot be judged (e.g. it was not evaluated on this test set)."""


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    metric: str
    run_id: str
    candidate_score: float
    candidate_scores: dict[str, float]
    champion_score: float | None
    champion_version: str | None
    interval: tuple[float, float] | None
    confidence: float
    registered_version: str | None


def current_champion(client: mlflow.MlflowClient, model_name: str):
    """The version the ``champion`` alias points at, or None when there is none yet."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def decide(
    candidate: float,
    champion: float | None,
    interval: tuple[float, float] | None,
    min_improvement: float,
    min_score: float,
) -> tuple[bool, str]:
    """The rule: pass the floor; and, if there is a champion, beat it by at least ``min_improvement``
    with a confidence interval of the difference that lies wholly above zero."""
    if candidate < min_score:
        return False, f"score {candidate:.4f} is below the floor {min_score:.4f}"
    if champion is None:
        return True, f"first model: score {candidate:.4f} passes the floor {min_score:.4f}"
    gain = candidate - champion
    if gain <= 0 or gain < min_improvement:
        return False, f"does not beat the champion: {gain:+.4f} (margin {min_improvement:.4f})"
    low, high = interval
    if low <= 0:
        return False, f"gain {gain:+.4f} is not significant: interval [{low:+.4f}, {high:+.4f}] includes 0"
    interval_text = f"interval [{low:+.4f}, {high:+.4f}]"
    return True, f"beats the champion by {gain:+.4f} (margin {min_improvement:.4f}, {interval_text})"


def _candidate_score(client: mlflow.MlflowClient, run_id: str, metric: str, digest: str) -> float:
    run = client.get_run(run_id)
    score = run.data.metrics.get(f"test_{metric}")
    if score is None or run.data.tags.get(TEST_DIGEST_TAG) != digest:
        raise GateError(f"run {run_id} has no test_{metric} for this test set: evaluate it first")
    return score


def _log_decision(decision: GateDecision) -> None:
    with mlflow.start_run(run_id=decision.run_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {"gate.decision": "promoted" if decision.promoted else "rejected", "gate.reason": decision.reason}
        )
        if decision.champion_score is not None:
            mlflow.log_metric(f"gate_champion_test_{decision.metric}", decision.champion_score)
        if decision.interval is not None:
            mlflow.log_metrics(
                {"gate_interval_low": decision.interval[0], "gate_interval_high": decision.interval[1]}
            )
        path = Path(tmp) / "gate_decision.json"
        path.write_text(json.dumps(asdict(decision), indent=2))
        mlflow.log_artifact(str(path), "gate")


def gate(
    candidates: list[tuple[str, str]],
    test_path: str,
    tracking_uri: str,
    model_name: str,
    metric: str = "macro_recall",
    min_improvement: float = 0.0,
    min_score: float = 0.4,
    confidence: float = 0.95,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> GateDecision:
    """Judge ``candidates`` ((run id, model URI) pairs, each evaluated on ``test_path``): the best by
    ``metric`` is promoted if it wins against the champion (see :func:`decide`)."""
    use_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    test = pd.read_parquet(test_path)
    digest = dataset_digest(test)
    scores = {run_id: _candidate_score(client, run_id, metric, digest) for run_id, _ in candidates}
    run_id, model_uri = max(candidates, key=lambda c: scores[c[0]])
    champion = current_champion(client, model_name)
    champion_score = interval = None
    if champion is not None:
        champion_labels = predict_labels(f"models:/{model_name}/{champion.version}", test)
        gain, low, high = paired_bootstrap(
            test["label"].tolist(), logged_predictions(run_id), champion_labels, metric,
            bootstrap_samples, confidence, seed,
        )  # fmt: skip
        champion_score, interval = scores[run_id] - gain, (low, high)
    promoted, reason = decide(scores[run_id], champion_score, interval, min_improvement, min_score)
    registered = None
    if promoted:
        version = mlflow.register_model(
            model_uri,
            model_name,
            tags={"gate": "pending", f"test_{metric}": f"{scores[run_id]:.6f}", "run_id": run_id},
        )
        card = mlflow.artifacts.load_text(f"runs:/{run_id}/{MODEL_CARD_ARTIFACT}")
        client.update_model_version(model_name, version.version, description=card)
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
        client.set_model_version_tag(model_name, version.version, "gate", "promoted")
        registered = str(version.version)
    decision = GateDecision(
        promoted, reason, metric, run_id, scores[run_id], scores, champion_score,
        str(champion.version) if champion else None, interval, confidence, registered,
    )  # fmt: skip
    _log_decision(decision)
    logger.info(
        "gate: %s run %s (%s); candidates %s", "PROMOTED" if promoted else "rejected", run_id, reason, scores
    )
    return decision
