"""The statistics of a canary analysis: each check compares what the canary version did with what the
stable version did over the same window, and says pass, fail or insufficient (too little traffic).

- errors: one-sided Fisher exact test of the two 5xx proportions (canary worse than stable);
- latency: the p99 ratio, failing beyond a tolerance that is both relative and absolute;
- class_mix: chi-square test of homogeneity of the predicted classes, with a minimum effect size (total
  variation distance), so that a huge sample does not roll back a shift nobody would notice;
- confidence: the drop of the mean confidence of the predicted class;
- live_quality: the labels clients posted for each version's answers (its live confusion matrix):
  one-sided z-test that the canary's macro recall is below the stable one's, with a minimum drop. Labels
  come late or not at all, so too few of them leave this check insufficient without holding a promotion
  (OPTIONAL_CHECKS); enough of them can roll a canary back that every traffic check passes.
"""

from dataclasses import asdict, dataclass, field

from scipy.stats import chi2_contingency, fisher_exact, norm

from monitoring.live_quality import quality_from_counts

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"
OPTIONAL_CHECKS = frozenset({"live_quality"})  # insufficient evidence here does not hold a promotion


@dataclass(frozen=True)
class VersionEvidence:
    """What one model version did in the analysis window (from Prometheus)."""

    version: str
    requests: int
    errors: int
    latency_p99_seconds: float | None
    class_counts: dict[str, int]
    mean_confidence: float | None
    labels: dict[str, dict[str, int]] = field(default_factory=dict)  # true label -> predicted -> count


@dataclass(frozen=True)
class Thresholds:
    """When a check fails; the defaults are in params.yaml (``canary_analysis``)."""

    min_requests: int
    alpha: float
    latency_max_ratio: float
    latency_slack_seconds: float
    class_mix_min_shift: float
    confidence_max_drop: float
    min_labels: int
    live_quality_max_drop: float


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: str
    statistic: float | None
    p_value: float | None
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def check_errors(stable: VersionEvidence, canary: VersionEvidence, alpha: float) -> CheckResult:
    """Fails when the canary's 5xx ratio is significantly above the stable one's (one-sided Fisher)."""
    table = [
        [canary.errors, canary.requests - canary.errors],
        [stable.errors, stable.requests - stable.errors],
    ]
    p_value = float(fisher_exact(table, alternative="greater").pvalue) if canary.errors else 1.0
    canary_ratio, stable_ratio = canary.errors / canary.requests, stable.errors / stable.requests
    return CheckResult(
        "errors",
        FAIL if p_value < alpha else PASS,
        canary_ratio - stable_ratio,
        p_value,
        f"5xx ratio canary {canary_ratio:.4f} ({canary.errors}/{canary.requests}) vs stable "
        f"{stable_ratio:.4f} ({stable.errors}/{stable.requests})",
    )


def check_latency(
    stable: VersionEvidence, canary: VersionEvidence, max_ratio: float, slack_seconds: float
) -> CheckResult:
    """Fails when the canary's p99 is above ``max_ratio`` times the stable one's and more than
    ``slack_seconds`` above it (histogram buckets make small p99s jump by whole buckets)."""
    if stable.latency_p99_seconds is None or canary.latency_p99_seconds is None:
        return CheckResult("latency", INSUFFICIENT, None, None, "no latency histogram samples")
    ratio = canary.latency_p99_seconds / max(stable.latency_p99_seconds, 1e-9)
    worse = ratio > max_ratio and canary.latency_p99_seconds - stable.latency_p99_seconds > slack_seconds
    return CheckResult(
        "latency",
        FAIL if worse else PASS,
        ratio,
        None,
        f"p99 canary {canary.latency_p99_seconds * 1000:.1f} ms vs stable "
        f"{stable.latency_p99_seconds * 1000:.1f} ms (ratio {ratio:.2f}, tolerance {max_ratio} and "
        f"{slack_seconds * 1000:.0f} ms)",
    )


def check_class_mix(
    stable: VersionEvidence, canary: VersionEvidence, alpha: float, min_shift: float
) -> CheckResult:
    """Fails when the predicted-class mixes differ significantly (chi-square test of homogeneity) by at
    least ``min_shift`` in total variation distance."""
    labels = sorted(set(stable.class_counts) | set(canary.class_counts))
    rows = [[version.class_counts.get(label, 0) for label in labels] for version in (canary, stable)]
    kept = [i for i in range(len(labels)) if rows[0][i] + rows[1][i] > 0]
    if sum(rows[0]) == 0 or sum(rows[1]) == 0:
        return CheckResult("class_mix", INSUFFICIENT, None, None, "no predictions counted")
    shares = [[row[i] / sum(row) for i in kept] for row in rows]
    shift = 0.5 * sum(abs(c - s) for c, s in zip(*shares, strict=True))
    if len(kept) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        result = chi2_contingency([[row[i] for i in kept] for row in rows])
        statistic, p_value = float(result.statistic), float(result.pvalue)
    mix = ", ".join(f"{labels[i]} {c:.3f}/{s:.3f}" for i, c, s in zip(kept, *shares, strict=True))
    return CheckResult(
        "class_mix",
        FAIL if p_value < alpha and shift >= min_shift else PASS,
        statistic,
        p_value,
        f"class shares canary/stable: {mix}; total variation {shift:.3f} (minimum effect {min_shift})",
    )


def check_confidence(stable: VersionEvidence, canary: VersionEvidence, max_drop: float) -> CheckResult:
    """Fails when the canary's mean confidence is more than ``max_drop`` below the stable one's."""
    if stable.mean_confidence is None or canary.mean_confidence is None:
        return CheckResult("confidence", INSUFFICIENT, None, None, "no confidence samples")
    drop = stable.mean_confidence - canary.mean_confidence
    return CheckResult(
        "confidence",
        FAIL if drop > max_drop else PASS,
        drop,
        None,
        f"mean confidence canary {canary.mean_confidence:.3f} vs stable {stable.mean_confidence:.3f} "
        f"(largest allowed drop {max_drop})",
    )


def check_live_quality(
    stable: VersionEvidence, canary: VersionEvidence, alpha: float, min_labels: int, max_drop: float
) -> CheckResult:
    """Fails when the canary's live macro recall is significantly below the stable one's (one-sided z-test
    on the two interval estimates of monitoring/live_quality.py) by at least ``max_drop``; insufficient
    while either version has fewer than ``min_labels`` labels."""
    quality = {
        v.version: quality_from_counts(
            {(label, guess): n for label, row in v.labels.items() for guess, n in row.items()}
        )
        for v in (stable, canary)
    }
    counted = {v: q.labelled if q else 0 for v, q in quality.items()}
    if min(counted.values()) < min_labels:
        detail = ", ".join(f"version {v}: {n}" for v, n in counted.items())
        return CheckResult("live_quality", INSUFFICIENT, None, None, f"labels {detail} (< {min_labels})")
    ours, theirs = quality[canary.version], quality[stable.version]
    drop = theirs.macro_recall - ours.macro_recall
    stderr = (ours.stderr**2 + theirs.stderr**2) ** 0.5
    p_value = float(norm.sf(drop / stderr)) if stderr > 0 else (0.0 if drop > 0 else 1.0)
    return CheckResult(
        "live_quality",
        FAIL if p_value < alpha and drop >= max_drop else PASS,
        -drop,
        p_value,
        f"live macro recall canary {ours.macro_recall:.3f} ({ours.labelled} labels) vs stable "
        f"{theirs.macro_recall:.3f} ({theirs.labelled} labels); largest allowed drop {max_drop}",
    )


def run_checks(stable: VersionEvidence, canary: VersionEvidence, limits: Thresholds) -> list[CheckResult]:
    """Every check. While either version has fewer than ``min_requests`` requests every check is
    insufficient, except a significant 5xx failure: a canary failing its first requests is rolled back
    without waiting for more of them."""
    names = ("errors", "latency", "class_mix", "confidence", "live_quality")
    short = [v for v in (stable, canary) if v.requests < limits.min_requests]
    if short:
        detail = "; ".join(f"version {v.version}: {v.requests} requests" for v in short)
        early = check_errors(stable, canary, limits.alpha) if stable.requests and canary.requests else None
        if early and early.outcome == FAIL:
            return [early]
        return [
            CheckResult(name, INSUFFICIENT, None, None, f"{detail} (< {limits.min_requests})")
            for name in names
        ]
    return [
        check_errors(stable, canary, limits.alpha),
        check_latency(stable, canary, limits.latency_max_ratio, limits.latency_slack_seconds),
        check_class_mix(stable, canary, limits.alpha, limits.class_mix_min_shift),
        check_confidence(stable, canary, limits.confidence_max_drop),
        check_live_quality(stable, canary, limits.alpha, limits.min_labels, limits.live_quality_max_drop),
    ]
