"""The canary checks on hand-made evidence: each passes for an equal canary, fails for a worse one, and
waits while either version has too little traffic."""

from dataclasses import replace

import pytest

from rollout.canary_analysis import judge_interval
from rollout.canary_checks import (
    FAIL,
    INSUFFICIENT,
    PASS,
    Thresholds,
    VersionEvidence,
    check_class_mix,
    check_confidence,
    check_errors,
    check_latency,
    check_live_quality,
    run_checks,
)

LIMITS = Thresholds(
    min_requests=50,
    alpha=0.01,
    latency_max_ratio=1.5,
    latency_slack_seconds=0.05,
    class_mix_min_shift=0.05,
    confidence_max_drop=0.05,
    min_labels=100,
    live_quality_max_drop=0.05,
)
MIX = {"negative": 300, "neutral": 400, "positive": 300}


def evidence(version="1", requests=1000, errors=0, p99=0.1, mix=None, confidence=0.8) -> VersionEvidence:
    return VersionEvidence(version, requests, errors, p99, dict(mix or MIX), confidence)


STABLE = evidence()


@pytest.mark.parametrize(
    ("canary", "outcome"),
    [
        (evidence("2", requests=100, errors=0), PASS),
        (evidence("2", requests=100, errors=1), PASS),  # 1 % is not significantly worse than 0 of 1,000
        (evidence("2", requests=100, errors=10), FAIL),
    ],
)
def test_errors_fail_only_when_significantly_worse(canary, outcome) -> None:
    result = check_errors(STABLE, canary, LIMITS.alpha)
    assert result.outcome == outcome
    if outcome == FAIL:
        assert result.p_value < 1e-6 and result.statistic == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("p99", "outcome"),
    [(0.1, PASS), (0.14, PASS), (0.2, FAIL), (None, INSUFFICIENT)],  # 0.14: within 1.5x
)
def test_latency_needs_both_the_ratio_and_the_slack(p99, outcome) -> None:
    assert check_latency(STABLE, evidence("2", p99=p99), 1.5, 0.05).outcome == outcome
    fast = evidence(p99=0.004)  # 4 ms -> 10 ms: 2.5x, but 6 ms is within the bucket slack
    assert check_latency(fast, evidence("2", p99=0.010), 1.5, 0.05).outcome == PASS


def test_class_mix_needs_significance_and_a_visible_shift() -> None:
    same = check_class_mix(
        STABLE, evidence("2", requests=200, mix={"negative": 61, "neutral": 79, "positive": 60}), 0.01, 0.05
    )
    assert same.outcome == PASS and same.p_value > 0.5
    shifted = check_class_mix(
        STABLE, evidence("2", mix={"negative": 100, "neutral": 200, "positive": 700}), 0.01, 0.05
    )
    assert shifted.outcome == FAIL and shifted.p_value < 1e-10 and "total variation 0.400" in shifted.detail
    huge = {k: v * 1000 for k, v in MIX.items()}
    tiny_shift = {"negative": 310_000, "neutral": 390_000, "positive": 300_000}
    small = check_class_mix(evidence(mix=huge), evidence("2", mix=tiny_shift), 0.01, 0.05)
    assert small.p_value < 0.01 and small.outcome == PASS  # significant, but a 1-point shift


def test_confidence_drop() -> None:
    assert check_confidence(STABLE, evidence("2", confidence=0.77), 0.05).outcome == PASS
    assert check_confidence(STABLE, evidence("2", confidence=0.70), 0.05).outcome == FAIL


def test_too_little_traffic_on_either_version_is_insufficient_for_every_check() -> None:
    results = run_checks(STABLE, evidence("2", requests=20, errors=0), LIMITS)
    assert {r.outcome for r in results} == {INSUFFICIENT} and len(results) == 5
    assert "version 2: 20 requests (< 50)" in results[0].detail
    assert {r.outcome for r in run_checks(STABLE, evidence("2", requests=0), LIMITS)} == {INSUFFICIENT}


def test_a_canary_failing_its_first_requests_fails_before_min_requests() -> None:
    (failed,) = run_checks(STABLE, evidence("2", requests=20, errors=20), LIMITS)
    assert failed.name == "errors" and failed.outcome == FAIL and failed.p_value < 1e-20
    passed = {r.name: r.outcome for r in run_checks(STABLE, evidence("2", requests=100), LIMITS)}
    assert passed == {"errors": PASS, "latency": PASS, "class_mix": PASS, "confidence": PASS} | {
        "live_quality": INSUFFICIENT  # no labels
    }


def labelled(version: str, right: tuple[int, int, int], wrong: tuple[int, int, int]) -> VersionEvidence:
    """A version whose labels say it got ``right[i]`` texts of the i-th class right and ``wrong[i]`` wrong
    (called the next class)."""
    classes = list(MIX)
    labels = {c: {c: right[i], classes[(i + 1) % 3]: wrong[i]} for i, c in enumerate(classes)}
    return replace(evidence(version), labels=labels)


GOOD = labelled("1", right=(90, 80, 90), wrong=(10, 20, 10))  # macro recall 0.867


def test_live_quality_judges_the_labels_when_both_versions_have_enough() -> None:
    same = labelled("2", right=(45, 40, 45), wrong=(5, 10, 5))
    assert check_live_quality(GOOD, same, 0.01, 100, 0.05).outcome == PASS
    swapped = labelled("3", right=(10, 80, 10), wrong=(90, 20, 90))  # macro recall 0.333
    failed = check_live_quality(GOOD, swapped, 0.01, 100, 0.05)
    assert failed.outcome == FAIL and failed.p_value < 1e-6
    assert failed.statistic == pytest.approx(-(0.8667 - 0.3333), abs=1e-3)
    slightly = labelled("4", right=(850, 760, 850), wrong=(150, 240, 150))  # 3 points lower, significant
    assert check_live_quality(GOOD, slightly, 0.5, 100, 0.05).outcome == PASS  # but below the drop
    few = labelled("5", right=(9, 8, 9), wrong=(1, 2, 1))
    assert check_live_quality(GOOD, few, 0.01, 100, 0.05).outcome == INSUFFICIENT


def test_missing_labels_do_not_hold_a_promotion_but_bad_ones_roll_back() -> None:
    canary = evidence("2")
    checks = run_checks(GOOD, canary, LIMITS)  # the canary has no labels yet
    assert {c.name: c.outcome for c in checks}["live_quality"] == INSUFFICIENT
    assert judge_interval(checks) == PASS
    swapped = labelled("2", right=(0, 100, 0), wrong=(100, 0, 100))
    assert judge_interval(run_checks(GOOD, swapped, LIMITS)) == FAIL
