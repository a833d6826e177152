"""Whether a retraining the monitor asks for may start now: the guards that keep a flood of alarms from
starting a flood of trainings (one at a time, a cooldown after each start, a weekly cap). Pure policy
over the record of earlier starts; the monitoring pipeline's prepare_retraining step
(components/retrain.py) reads that record from MLflow and acts on the answer."""

from dataclasses import dataclass

HOUR_SECONDS = 3600
WEEK_SECONDS = 7 * 24 * HOUR_SECONDS


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
