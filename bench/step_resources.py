"""Step resources benchmark (not a test): what each step of the training pipeline uses, measured on a
kfp.local run on this machine: its peak memory (the RSS of the step's process tree, sampled every 0.2 s)
and its wall time. The ``cluster.resources`` defaults in params.yaml come from these figures.

    python bench/step_resources.py [--data ../shared/data/tweeteval_sentiment] [--rows 4000] \
        [--transformer-steps 100] [--output bench/results/step-resources.json]
"""

import argparse
import json
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import SHARED_DATA, write_params  # noqa: E402

STEP = re.compile(r"--function_to_execute\s+(\w+)")


class StepSampler:
    """Samples this process's descendants; attributes each kfp.local task process (and its children) to
    its step by the ``--function_to_execute`` of its command line."""

    def __init__(self, period_s: float = 0.2):
        self.period_s = period_s
        self.peak_mib: dict[str, float] = defaultdict(float)  # all of a step's tasks at once
        self.peak_task_mib: dict[str, float] = defaultdict(float)  # its largest single task
        self.seen: dict[str, list[float]] = {}  # step -> [first, last] monotonic time
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _task_of(self, process) -> tuple[str, int] | None:
        """(step, pid of its task process) of ``process``; None for a process of no task."""
        for candidate in [process, *process.parents()]:
            try:
                match = STEP.search(" ".join(candidate.cmdline()))
            except Exception:  # the process ended between two calls
                return None
            if match:
                return match.group(1), candidate.pid
        return None

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stopping.is_set():
            tasks: dict[tuple[str, int], float] = defaultdict(float)
            for process in me.children(recursive=True):
                try:
                    task = self._task_of(process)
                    if task:
                        tasks[task] += process.memory_info().rss / 2**20
                except psutil.Error:
                    continue
            now = time.monotonic()
            totals: dict[str, float] = defaultdict(float)
            for (step, _), mib in tasks.items():
                totals[step] += mib
                self.peak_task_mib[step] = max(self.peak_task_mib[step], mib)
            for step, mib in totals.items():
                self.peak_mib[step] = max(self.peak_mib[step], mib)
                self.seen.setdefault(step, [now, now])[1] = now
            time.sleep(self.period_s)

    def __enter__(self) -> "StepSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(SHARED_DATA / "tweeteval_sentiment"))
    parser.add_argument("--rows", type=int, default=4000, help="rows per split (0: all)")
    parser.add_argument("--transformer-steps", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=REPO / ".mlops" / "bench-step-resources")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "step-resources.json")
    args = parser.parse_args()

    from pipelines import run

    args.workdir.mkdir(parents=True, exist_ok=True)
    params = write_params(
        args.workdir / "params.yaml",
        ingest={"max_rows_per_split": args.rows},
        train_transformer={"max_steps": args.transformer_steps, "eval_steps": args.transformer_steps},
    )
    started = time.monotonic()
    with StepSampler() as sampler:
        run.main(["--data", args.data, "--params", str(params), "--workdir", str(args.workdir)])
    steps = {
        step: {
            "peak_rss_mib": round(sampler.peak_mib[step]),
            "seconds": round(last - first, 1),
        }
        for step, (first, last) in sorted(sampler.seen.items(), key=lambda item: item[1][0])
    }
    report = {
        "data": args.data,
        "rows_per_split": args.rows,
        "transformer_steps": args.transformer_steps,
        "pipeline_seconds": round(time.monotonic() - started, 1),
        "steps": steps,
    }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
