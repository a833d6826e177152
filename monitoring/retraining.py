"""The retraining policy, pure: whether the monitor's evidence calls for a retraining (text drift in every
one of the latest windows unless live labels show the quality holding, or live quality fallen below the
offline score), and whether one may start now (the guards that keep a flood of alarms from starting a
flood of trainings: one at a time, a cooldown after each start, a weekly cap). The monitor step
(components/monitor.py) gathers the evidence; the monitoring pipeline's prepare_retraining step
(components/retrain.py) reads the record of earlier starts from MLflow and acts on the answers."""

from dataclasses import dataclass

HOUR_SECONDS = 3600
WEEK_SECONDS = 7 * 24 * HOUR_SECONDS


@dataclass(frozen=True)
class WindowDrift:
    """The embedding drift tests on one window of consecutive logged texts."""

    rows: int
    mmd: float
    mmd_pvalue: float
    auc: float
    auc_pvalue: float
    drifted: bool


@dataclass(frozen=True)
class LiveQualityCheck:
    """Live macro recall of the version on its labelled answers, against its offline test score."""

    labelled: int
    value: float
    lower: float
    upper: float
    offline: float
    margin: float

    @property
    def fallen(self) -> bool:
        return self.upper < self.offline - self.margin

    @property
    def holds(self) -> bool:
        return self.lower >= self.offline - self.margin


def retrain_decision(
    windows: list[WindowDrift],
    quality: LiveQualityCheck | None,
    consecutive_windows: int,
    window_rows: int,
    alpha: float,
) -> tuple[list[str], list[str]]:
    """(why to retrain, empty when there is no need; notes): every one of the ``consecutive_windows``
    windows (of ``window_rows`` texts, tested at ``alpha``) drifted and live labels do not show the
    quality holding, or live quality has fallen below the offline score by more than the margin."""
    reasons, notes = [], []
    if len(windows) == consecutive_windows and all(w.drifted for w in windows):
        pvalues = ", ".join(f"{min(w.mmd_pvalue, w.auc_pvalue):.2g}" for w in windows)
        drift = (
            f"text drift in {len(windows)} consecutive windows of {window_rows} texts "
            f"(smallest p-values {pvalues}; alpha {alpha})"
        )
        if quality is not None and quality.holds:
            notes.append(
                f"{drift}, but {quality.labelled} live labels show the quality holding (lower bound "
                f"{quality.lower:.3f} >= offline {quality.offline:.3f} - {quality.margin}): no retraining"
            )
        else:
            reasons.append(drift)
    if quality is not None and quality.fallen:
        reasons.append(
            f"live macro recall {quality.value:.3f} (95 % upper bound {quality.upper:.3f}, "
            f"{quality.labelled} labels) is below the offline {quality.offline:.3f} minus {quality.margin}"
        )
    return reasons, notes


@dataclass(frozen=True)
class RetrainingStart:
    """One earlier start: its record (an MLflow run id), how long ago it started, whether it is running."""

    record_id: str
    age_seconds: float
    running: bool


def stale_starts(starts: list[RetrainingStart], max_training_hours: float) -> list[RetrainingStart]:
    """The starts still marked running after ``max_training_hours``: their training ended without a
    verdict (it failed, or was stopped), so they no longer count as in progress."""
    return [s for s in starts if s.running and s.age_seconds >= max_training_hours * HOUR_SECONDS]


def hold_off_reason(
    starts: list[RetrainingStart], cooldown_hours: float, max_per_week: int, max_training_hours: float
) -> str | None:
    """Why not to start a retraining now, given the earlier ``starts`` (any order): one in progress, the
    cooldown since the latest start, or ``max_per_week`` starts in the last seven days; None: go."""
    by_age = sorted(starts, key=lambda s: s.age_seconds)
    for start in by_age:
        if start.running and start.age_seconds < max_training_hours * HOUR_SECONDS:
            return (
                f"a retraining is in progress (MLflow run {start.record_id}, started "
                f"{start.age_seconds / 60:.0f} min ago)"
            )
    if by_age and by_age[0].age_seconds < cooldown_hours * HOUR_SECONDS:
        return (
            f"cooldown: the last retraining started {by_age[0].age_seconds / HOUR_SECONDS:.1f} h ago "
            f"({cooldown_hours} h)"
        )
    recent = sum(start.age_seconds < WEEK_SECONDS for start in by_age)
    if recent >= max_per_week:
        return f"{recent} retrainings started in the last 7 days (the limit is {max_per_week})"
    return None
