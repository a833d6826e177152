"""The retraining guards as pure policy (monitoring/retraining.py): one at a time, the cooldown, the weekly
cap, and a start still running past its time counted as ended."""

from monitoring.retraining import (
    LiveQualityCheck,
    RetrainingStart,
    WindowDrift,
    hold_off_reason,
    retrain_decision,
    stale_starts,
)

HOUR = 3600.0
GUARDS = {"cooldown_hours": 24.0, "max_per_week": 3, "max_training_hours": 6.0}


def start(hours_ago: float, running: bool = False, record_id: str = "r") -> RetrainingStart:
    return RetrainingStart(record_id, hours_ago * HOUR, running)


def test_nothing_started_goes() -> None:
    assert hold_off_reason([], **GUARDS) is None


def test_a_running_start_holds_until_its_time_is_up_then_counts_as_ended() -> None:
    running = start(2, running=True, record_id="abc")
    assert hold_off_reason([running], **GUARDS | {"cooldown_hours": 1.0}) == (
        "a retraining is in progress (MLflow run abc, started 120 min ago)"
    )
    late = start(30, running=True)
    assert stale_starts([running, late], max_training_hours=6.0) == [late]
    assert hold_off_reason([late], **GUARDS) is None


def test_the_cooldown_follows_the_latest_start_in_any_order() -> None:
    starts = [start(24 * 8), start(5), start(50)]
    assert hold_off_reason(starts, **GUARDS) == "cooldown: the last retraining started 5.0 h ago (24.0 h)"
    assert hold_off_reason(starts, **GUARDS | {"cooldown_hours": 4.0}) is None


def test_the_weekly_cap_counts_starts_of_the_last_seven_days_whatever_their_outcome() -> None:
    starts = [start(30), start(60), start(90, running=True), start(24 * 8)]
    assert hold_off_reason(starts, **GUARDS) == "3 retrainings started in the last 7 days (the limit is 3)"
    assert hold_off_reason(starts, **GUARDS | {"max_per_week": 4}) is None


def window(drifted: bool) -> WindowDrift:
    pvalue = 0.001 if drifted else 0.4
    return WindowDrift(rows=300, mmd=0.2, mmd_pvalue=pvalue, auc=0.9, auc_pvalue=0.002, drifted=drifted)


def quality(lower: float, upper: float) -> LiveQualityCheck:
    value = (lower + upper) / 2
    return LiveQualityCheck(labelled=500, value=value, lower=lower, upper=upper, offline=0.7, margin=0.05)


def test_drift_in_every_window_retrains_unless_labels_show_the_quality_holding() -> None:
    drifted = [window(True), window(True)]
    (reason,), notes = retrain_decision(drifted, None, 2, 300, 0.01)
    assert reason.startswith("text drift in 2 consecutive windows of 300 texts") and notes == []
    reasons, (note,) = retrain_decision(drifted, quality(0.66, 0.72), 2, 300, 0.01)
    assert reasons == [] and "show the quality holding" in note
    assert retrain_decision([window(True), window(False)], None, 2, 300, 0.01) == ([], [])
    assert retrain_decision([window(True)], None, 2, 300, 0.01) == ([], [])  # not enough windows yet


def test_fallen_live_quality_retrains_without_drift() -> None:
    (reason,), _ = retrain_decision([window(False)] * 2, quality(0.55, 0.63), 2, 300, 0.01)
    assert reason.startswith("live macro recall 0.590 (95 % upper bound 0.630, 500 labels)")
    assert retrain_decision([window(False)] * 2, quality(0.60, 0.70), 2, 300, 0.01) == ([], [])
