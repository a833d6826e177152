"""The suite's own record, as a pytest plugin: each test's time (setup, call, teardown) and the machine's
peak memory while it ran, and a count of the expensive things the suite starts. Written to
``test-results/durations.csv`` and ``test-results/summary.json`` (``TEST_RESULTS`` moves the folder);
the counts and the slowest tests end the terminal report.

Counted in every Python process of the run (tests/counting/sitecustomize.py, on the children's
PYTHONPATH, reports their process starts to the same file): predictor processes, ``mlflow server``s, moto
servers and kfp.local task processes; fine-tunes (in-process calls and ``train_transformer`` tasks);
kfp.local pipeline runs and in-process model loads of the test process itself.
"""

import csv
import json
import os
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.counting import COUNTS_ENV, count, install_hook, read_counts

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("TEST_RESULTS", REPO / "test-results"))
COUNTING_PATH = Path(__file__).resolve().parent / "counting"
SLOWEST = 20


def used_memory_mib() -> float:
    """The machine's memory in use (MemTotal - MemAvailable), MiB."""
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":", 1)
            values[name] = int(value.split()[0])
    return (values["MemTotal"] - values["MemAvailable"]) / 1024


class MemorySampler(threading.Thread):
    """Samples the machine's used memory every 0.25 s: the session's peak, and each running test's."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.session_peak = used_memory_mib()
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            used = used_memory_mib()
            with self.lock:
                self.session_peak = max(self.session_peak, used)
                for nodeid, peak in self.running.items():
                    self.running[nodeid] = max(peak, used)

    def start_test(self, nodeid: str) -> None:
        with self.lock:
            self.running[nodeid] = used_memory_mib()

    def end_test(self, nodeid: str) -> float:
        with self.lock:
            return max(self.running.pop(nodeid, 0.0), used_memory_mib())


def wrap_counted(module, name: str, what: str, when=lambda *args, **kwargs: True) -> None:
    """Count every call of ``module.name`` for which ``when`` holds (given its arguments) as ``what``."""
    original = getattr(module, name)

    def counted(*args, **kwargs):
        if when(*args, **kwargs):
            count(what)
        return original(*args, **kwargs)

    setattr(module, name, counted)


class RunRecord:
    def __init__(self) -> None:
        self.phases: dict[str, dict[str, float]] = defaultdict(dict)
        self.starts: dict[str, float] = {}
        self.workers: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        self.peaks: dict[str, float] = {}
        self.sampler = MemorySampler()
        self.started = time.time()

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config) -> None:
        self.worker = hasattr(config, "workerinput")  # an xdist worker: it runs tests, the controller records
        if not self.worker:
            RESULTS.mkdir(parents=True, exist_ok=True)
            counts_file = RESULTS / "counts.log"
            counts_file.write_text("")
            os.environ[COUNTS_ENV] = str(counts_file)  # the workers and every child inherit it
            os.environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(COUNTING_PATH), os.environ.get("PYTHONPATH")) if p
            )
            self.sampler.start()
        install_hook()
        import mlflow.pyfunc
        from kfp.local import pipeline_orchestrator

        import components.train_transformer

        wrap_counted(
            mlflow.pyfunc,
            "load_model",
            "champion loads in the test processes",
            lambda uri, *args, **kwargs: "@champion" in str(uri),
        )
        wrap_counted(components.train_transformer, "fine_tune", "fine-tunes")
        wrap_counted(pipeline_orchestrator, "run_local_pipeline", "kfp.local pipeline runs")

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        if not self.worker:
            self.starts[nodeid] = time.time() - self.started
            self.sampler.start_test(nodeid)

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        if not self.worker:
            self.peaks[nodeid] = self.sampler.end_test(nodeid)

    def pytest_runtest_logreport(self, report) -> None:
        self.phases[report.nodeid][report.when] = report.duration
        node = getattr(report, "node", None)  # the xdist worker that ran it
        self.workers[report.nodeid] = node.gateway.id if node is not None else "main"
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.nodeid] = report.outcome

    def rows(self) -> list[dict]:
        rows = []
        for nodeid, phases in self.phases.items():
            setup, call, teardown = (round(phases.get(p, 0.0), 2) for p in ("setup", "call", "teardown"))
            rows.append(
                {
                    "test": nodeid,
                    "outcome": self.outcomes.get(nodeid, "passed"),
                    "total_s": round(setup + call + teardown, 2),
                    "setup_s": setup,
                    "call_s": call,
                    "teardown_s": teardown,
                    "peak_memory_mib": round(self.peaks.get(nodeid, 0.0)),
                    "worker": self.workers.get(nodeid, "main"),
                    "started_at_s": round(self.starts.get(nodeid, 0.0), 1),
                }
            )
        return sorted(rows, key=lambda row: row["total_s"], reverse=True)

    def pytest_sessionfinish(self, session) -> None:
        self.sampler.stopped.set()
        rows = self.rows()
        if self.worker or not rows:
            return
        with open(RESULTS / "durations.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        summary = {
            "tests": len(rows),
            "outcomes": dict(Counter(row["outcome"] for row in rows)),
            "wall_s": round(time.time() - self.started, 1),
            "sum_of_tests_s": round(sum(row["total_s"] for row in rows), 1),
            "peak_memory_mib": round(self.sampler.session_peak),
            "randomly_seed": session.config.getoption("randomly_seed", None),
            "workers": session.config.getoption("numprocesses", None) or 0,
            "started": self.counts_description(),
            "slowest": rows[:SLOWEST],
        }
        (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    @staticmethod
    def counts_description() -> dict[str, int]:
        return dict(sorted(read_counts().items()))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        rows = self.rows()
        if self.worker or not rows:
            return
        write = terminalreporter.write_line
        terminalreporter.section("what the suite started")
        for what, number in self.counts_description().items():
            write(f"{number:6d}  {what}")
        write(f"peak memory in use on the machine: {self.sampler.session_peak:,.0f} MiB")
        terminalreporter.section(f"the {SLOWEST} slowest tests (setup included)")
        for row in rows[:SLOWEST]:
            write(f"{row['total_s']:8.1f} s  {row['peak_memory_mib']:6d} MiB  {row['test']}")
        write(f"every test's times and peak memory: {RESULTS / 'durations.csv'}")


def pytest_configure(config) -> None:
    config.pluginmanager.register(RunRecord(), "run-record")
