"""gate: pick the best evaluated candidate and move the ``champion`` alias to it only when it beats the
current champion on the same test set by a margin, and the paired-bootstrap confidence interval of the
difference excludes zero (a first model must pass an absolute floor).

The score is the metric on the held-out sets: the test split (one set per training source when there
are several: each source's own test slice) and each out-of-domain set. By default
(``score: heldout_mean``) it is their mean, so that a candidate fitted to one source, or to the
validation split, cannot win on it; ``score: weighted`` gives the test sets ``1 - ood_weight`` and the
out-of-domain sets ``ood_weight``, each shared equally. With one source and no out-of-domain set, both
are the test split's metric.

The winner's INT8 runtime (scored by evaluate as ``test_int8_<metric>``) is accepted when it loses at
most ``int8_max_loss`` of the test metric; the verdict is recorded in the decision and on the registered
version (tags ``int8_accepted``, ``int8_loss``), where the predictor's ``--runtime int8`` reads it.

Each candidate is scored here from the predictions evaluate made for every row of these sets (handed
over as data, not read back from the registry). Safety: the alias moves last, in one registry call, and
only to a candidate with predictions for these very rows; a crash at any point leaves the previous
champion in place.
"""

import json
import logging
from dataclasses import dataclass, replace

import mlflow
import pandas as pd
from kfp.dsl import Dataset, Input

from components import component
from components.evaluate import Candidate, test_sets
from components.model_card import MODEL_CARD_ARTIFACT
from components.scores import PairedSet, classification_metrics, paired_bootstrap
from core.artifacts import TRAFFIC_MIX_TAG
from core.config import RunConfig
from core.decisions import GateDecision, record_decision
from core.lineage import sources_of
from core.registry import CHAMPION_ALIAS, champion
from core.tracking import use_tracking

logger = logging.getLogger(__name__)


class GateError(RuntimeError):
    """A candidate cannot be judged (e.g. it was not evaluated on this test set)."""


@dataclass(frozen=True)
class GateConfig:
    """params.yaml ``gate``: see the comments there."""

    min_improvement: float
    min_score: float
    confidence: float
    bootstrap_samples: int
    score: str
    ood_weight: float
    int8_max_loss: float
    target: str
    guard_tolerance: float


def int8_verdict(run, metric: str, max_loss: float) -> tuple[float | None, bool]:
    """(test-metric loss of the INT8 runtime, accepted?); (None, False) for a model without one."""
    int8 = run.data.metrics.get(f"test_int8_{metric}")
    if int8 is None:
        return None, False
    loss = run.data.metrics[f"test_{metric}"] - int8
    return loss, loss <= max_loss


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


@dataclass(frozen=True)
class ScoredSet:
    """One evaluation set the score is made of: its name (``test``, ``test_<source>`` or
    ``ood_<domain>``), weight and rows."""

    name: str
    weight: float
    rows: pd.DataFrame


SCORES = ("heldout_mean", "weighted")
TARGETS = ("first_source", "all", "traffic")
FEEDBACK_SET = "ood_feedback"  # the retraining loop's held-out feedback (components/retrain.py)


def target_sets(
    sets: list[ScoredSet], target: str, target_source: str | None, mix: dict[str, float] | None = None
) -> list[ScoredSet]:
    """The held-out sets that stand for the served traffic, weighted to sum to 1: for ``traffic`` with a
    ``mix`` (the monitor's estimate of the served traffic's share of each training source), each
    source's test slice by its share; for ``first_source`` (the fallback without a mix, or a DATA
    source's name declared as the target), ``target_source``'s test slice (the only test set with one
    source), and the feedback slice when the retraining loop added one, equally; for ``all``, every set
    with the score's weights."""
    if target == "all":
        return sets
    names = {s.name for s in sets}
    weighted = {f"test_{source}": share for source, share in (mix or {}).items() if f"test_{source}" in names}
    if target == "traffic" and "test" not in names and sum(weighted.values()) > 0:
        total = sum(weighted.values())
        return [ScoredSet(s.name, weighted[s.name] / total, s.rows) for s in sets if s.name in weighted]
    first = "test" if "test" in names else f"test_{target_source}"
    if first not in names:
        raise ValueError(
            f"gate.target {target}: no held-out set {first!r} among {sorted(names)} (gate.target is one of "
            f"{TARGETS} or a DATA source's name)"
        )
    chosen = [s for s in sets if s.name in (first, FEEDBACK_SET)]
    return [ScoredSet(s.name, 1.0 / len(chosen), s.rows) for s in chosen]


def target_source(target: str, sources: list[str], lineage: list[dict]) -> tuple[str | None, list[str]]:
    """(the DATA source whose test slice is the target, the sources passed over): a source named by
    ``target`` itself; for ``first_source``, the first of ``sources`` whose labels ingest did not flag
    as machine-labelled (``lineage``: the test split's sources with their label checks), or the first
    when every one is flagged (also ``traffic``'s fallback). None for ``all``."""
    if target == "all":
        return None, []
    if target not in ("first_source", "traffic"):  # traffic falls back to first_source without a mix
        return target, []
    flagged = {s["name"] for s in lineage if s.get("label_checks", {}).get("machine_labelled")}
    trusted = [name for name in sources if name not in flagged]
    if not sources:
        return None, []
    chosen = trusted[0] if trusted else sources[0]
    return chosen, [name for name in sources[: sources.index(chosen)] if name in flagged]


def scored_sets(
    test: pd.DataFrame, ood: pd.DataFrame | None, score: str, ood_weight: float
) -> list[ScoredSet]:
    """The test sets (:func:`components.evaluate.test_sets`), plus each out-of-domain domain when there
    are any (and, for ``weighted``, ``ood_weight`` > 0), with their weights in the score (see the
    module's docstring)."""
    if score not in SCORES:
        raise ValueError(f"gate.score must be one of {SCORES}, got {score!r}")
    if not 0 <= ood_weight < 1:
        raise ValueError(f"ood_weight must be in [0, 1), got {ood_weight}")
    weighted = score == "weighted"
    has_ood = ood is not None and len(ood) and (ood_weight or not weighted)
    domains = sorted(ood["domain"].unique()) if has_ood else []
    names = test_sets(test)
    tests = sorted(names.unique())
    if weighted and domains:
        test_share, ood_share = (1.0 - ood_weight) / len(tests), ood_weight / len(domains)
    else:
        test_share = ood_share = 1.0 / (len(tests) + len(domains))
    return [ScoredSet(name, test_share, test[names == name]) for name in tests] + [
        ScoredSet(f"ood_{d}", ood_share, ood[ood["domain"] == d]) for d in domains
    ]


def _predicted(candidate: Candidate, scored: ScoredSet, metric: str) -> list[str]:
    """The labels evaluate predicted for ``scored``'s rows, refusing a candidate evaluated on other data
    (or not at all)."""
    known = candidate.predictions
    mine = known[known["set"] == scored.name] if len(known) else known
    if len(mine) == 0 or mine["text"].tolist() != scored.rows["text"].tolist():
        raise GateError(
            f"run {candidate.run_id} has no {scored.name}_{metric} for this data: evaluate it first"
        )
    return mine["predicted"].tolist()


def _set_scores(candidate: Candidate, metric: str, sets: list[ScoredSet]) -> dict[str, float]:
    """The candidate's ``metric`` on each set, from its predictions and the sets' own labels (what
    evaluate logged, computed alike; no registry read)."""
    scores = {}
    for scored in sets:
        truth = scored.rows["label"].tolist()
        scores[scored.name] = classification_metrics(truth, _predicted(candidate, scored, metric))[metric]
    return scores


def _paired_with_champion(
    candidate: Candidate, champion_uri: str, sets: list[ScoredSet], metric: str
) -> dict[str, PairedSet]:
    """Each set's truth, candidate and champion labels (weight 1); the champion is loaded once and
    predicts every set's rows in one call."""
    rows = pd.concat([scored.rows[["text"]] for scored in sets], ignore_index=True)
    predicted = mlflow.pyfunc.load_model(champion_uri).predict(rows)["label"].tolist()
    paired, start = {}, 0
    for scored in sets:
        truth = scored.rows["label"].tolist()
        champion_labels = predicted[start : start + len(scored.rows)]
        paired[scored.name] = PairedSet(1.0, truth, _predicted(candidate, scored, metric), champion_labels)
        start += len(scored.rows)
    return paired


def compare_with_champion(
    paired: dict[str, PairedSet], target: list[ScoredSet], metric: str, config: GateConfig, seed: int
) -> tuple[tuple[float, float, float], dict[str, list[float]]]:
    """(gain, low, high) on the target (its weights, at ``config.confidence``), and [gain, low, high] on
    each held-out set alone: the target's sets at ``config.confidence``, the others (the guards) at a
    Bonferroni-corrected level, so that all of them together hold at ``config.confidence``."""
    on_target = paired_bootstrap(
        [replace(paired[s.name], weight=s.weight) for s in target],
        metric,
        config.bootstrap_samples,
        config.confidence,
        seed,
    )
    names = {s.name for s in target}
    guards = [name for name in paired if name not in names]
    guard_confidence = 1 - (1 - config.confidence) / max(len(guards), 1)
    sets = {
        name: list(
            paired_bootstrap(
                [pair],
                metric,
                config.bootstrap_samples,
                config.confidence if name in names else guard_confidence,
                seed,
            )
        )
        for name, pair in paired.items()
    }
    return on_target, sets


def guard_failure(
    set_comparisons: dict[str, list[float]], target: list[ScoredSet], tolerance: float
) -> str | None:
    """Why the challenger is worse than the champion on a held-out set outside the target (the interval's
    lower bound below ``-tolerance``), or None."""
    names = {s.name for s in target}
    worse = [
        f"{name} {gain:+.4f} (interval [{low:+.4f}, {high:+.4f}])"
        for name, (gain, low, high) in sorted(set_comparisons.items())
        if name not in names and low < -tolerance
    ]
    if not worse:
        return None
    return f"worse than the champion beyond the tolerance {tolerance:.3f} on {', '.join(worse)}"


def gate_candidates(
    candidates: list[Candidate],
    test_path: str,
    ood_path: str | None,
    config: GateConfig,
    run: RunConfig,
    tracking_uri: str,
    sources: list[str] | None = None,
    traffic: dict[str, float] | None = None,
) -> GateDecision:
    """Judge ``candidates`` (each evaluated on ``test_path`` and ``ood_path``): the best by ``run.metric``
    on the target (:func:`target_sets`, :func:`target_source`; ``sources``: the DATA sources' names, in
    order; ``traffic``: the monitor's latest traffic mix, for ``gate.target: traffic``) is promoted
    if it beats the champion there (see :func:`decide`) and is no worse than the champion on any other
    held-out set beyond ``config.guard_tolerance`` (:func:`guard_failure`)."""
    use_tracking(tracking_uri)
    client = mlflow.MlflowClient()
    metric, model_name = run.metric, run.model_name
    test, ood = pd.read_parquet(test_path), pd.read_parquet(ood_path) if ood_path else None
    sets = scored_sets(test, ood, config.score, config.ood_weight)
    chosen, passed_over = target_source(config.target, sources or [], sources_of(test))
    target = target_sets(sets, config.target, chosen, traffic)
    set_scores = {c.run_id: _set_scores(c, metric, sets) for c in candidates}
    scores = {run_id: sum(s.weight * parts[s.name] for s in target) for run_id, parts in set_scores.items()}
    best = max(candidates, key=lambda c: scores[c.run_id])
    run_id = best.run_id
    current = champion(model_name, client)
    champion_score = interval = None
    set_comparisons: dict[str, list[float]] = {}
    if current is not None:
        paired = _paired_with_champion(best, f"models:/{model_name}/{current.version}", sets, metric)
        (gain, low, high), set_comparisons = compare_with_champion(paired, target, metric, config, run.seed)
        champion_score, interval = scores[run_id] - gain, (low, high)
    promoted, reason = decide(
        scores[run_id], champion_score, interval, config.min_improvement, config.min_score
    )
    rule = "first model" if current is None else "target"
    guarded = guard_failure(set_comparisons, target, config.guard_tolerance) if promoted else None
    if guarded:
        promoted, reason, rule = False, f"{reason}, but {guarded}", "guard"
    if passed_over:
        reason += f" (target {chosen}: {', '.join(passed_over)} probably machine-labelled)"
    if config.target == "traffic":
        mixed = ", ".join(f"{s.name} {s.weight:.2f}" for s in target)
        reason += f" (target: {'the traffic mix' if traffic else 'no traffic mix recorded yet'}: {mixed})"
    int8_loss, int8_accepted = int8_verdict(client.get_run(run_id), metric, config.int8_max_loss)
    registered = None
    if promoted:
        version = mlflow.register_model(
            best.model_uri,
            model_name,
            tags={
                "gate": "pending",
                f"score_{metric}": f"{scores[run_id]:.6f}",
                "run_id": run_id,
                "int8_accepted": str(int8_accepted).lower(),
            }
            | ({"int8_loss": f"{int8_loss:.6f}"} if int8_loss is not None else {}),
        )
        card = mlflow.artifacts.load_text(f"runs:/{run_id}/{MODEL_CARD_ARTIFACT}")
        weights = ", ".join(f"{s.name} {s.weight:.2f}" for s in target)
        card += f"\n## Gate\n\nPromoted on the target ({config.target}): {weights}. {reason}\n"
        client.update_model_version(model_name, version.version, description=card)
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
        client.set_model_version_tag(model_name, version.version, "gate", "promoted")
        registered = str(version.version)
    decision = GateDecision(
        promoted=promoted,
        reason=reason,
        metric=metric,
        weights={s.name: s.weight for s in target},
        run_id=run_id,
        candidate_score=scores[run_id],
        candidate_scores=scores,
        candidate_set_scores=set_scores,
        champion_score=champion_score,
        champion_version=str(current.version) if current else None,
        interval=interval,
        confidence=config.confidence,
        registered_version=registered,
        int8_loss=int8_loss,
        int8_accepted=int8_accepted,
        target=[s.name for s in target],
        set_comparisons=set_comparisons,
        rule=rule,
    )
    record_decision(decision)
    logger.info(
        "gate: %s run %s (%s); candidates %s", "PROMOTED" if promoted else "rejected", run_id, reason, scores
    )
    return decision


def latest_traffic_mix(tracking_uri: str, model_name: str) -> dict[str, float] | None:
    """The traffic mix of the latest monitor run of ``model_name`` that recorded one (the monitor step's
    estimate of how much of the served traffic resembles each training source); None before any."""
    from components.monitor import MONITOR_EXPERIMENT

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(MONITOR_EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.model_name = '{model_name}' and tags.{TRAFFIC_MIX_TAG} != ''",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return json.loads(runs[0].data.tags[TRAFFIC_MIX_TAG]) if runs else None


@component
def gate(
    linear_embeddings: Input[Dataset],
    linear_tfidf: Input[Dataset],
    transformer: Input[Dataset],
    ensemble: Input[Dataset],
    test: Input[Dataset],
    out_of_domain: Input[Dataset],
    config: dict,
    run: dict,
    ingest: dict,
    tracking_uri: str,
) -> str:
    """Promote the best candidate (by the predictions evaluate handed on) to the registry's ``champion``
    alias only if it beats the champion on the target and is no worse elsewhere (params.yaml ``gate``;
    ``ingest``: its sources, the first of which is the default target); record whether its INT8 runtime
    is accepted. Returns the decision as JSON, and pushes it to the run's Pushgateway when there is one."""
    import pandas as pd

    from components.evaluate import Candidate
    from components.gate import GateConfig, gate_candidates, latest_traffic_mix
    from core.config import RunConfig, from_mapping
    from core.lineage import source_name
    from monitoring.pushgateway import push_gate_metrics

    evaluated = (linear_embeddings, linear_tfidf, transformer, ensemble)
    candidates = [
        Candidate(p.metadata["run_id"], p.metadata["model_uri"], pd.read_parquet(p.path)) for p in evaluated
    ]
    settings = from_mapping(RunConfig, run, "run")
    rules = from_mapping(GateConfig, config, "gate")
    traffic = latest_traffic_mix(tracking_uri, settings.model_name) if rules.target == "traffic" else None
    result = gate_candidates(
        candidates,
        test.path,
        out_of_domain.path,
        rules,
        settings,
        tracking_uri,
        [source_name(source) for source in ingest.get("sources", [])],
        traffic,
    )
    families = {p.metadata["run_id"]: p.metadata["family"] for p in evaluated}
    push_gate_metrics(settings.pushgateway, settings.model_name, result, families)
    return result.to_json()
