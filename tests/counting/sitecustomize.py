"""Counts the expensive processes a test run starts, in every Python process of the run: on the
PYTHONPATH of the suite's children (tests/run_record.py puts it there), it reports each process start it
recognises as one line of the file named by SENTIMENT_TEST_COUNTS. Does nothing where that is unset."""

import os
import sys

COUNTS_ENV = "SENTIMENT_TEST_COUNTS"
KINDS = (  # (what, a test on the started command line)
    ("predictor processes", lambda argv: "-m" in argv and "serving" in argv and "--help" not in argv),
    ("mlflow servers", lambda argv: any(a.endswith("mlflow") for a in argv[:1]) and "server" in argv),
    ("moto servers", lambda argv: any(a.endswith("moto_server") for a in argv[:1])),
    ("kfp.local task processes", lambda argv: any("kfp.dsl.executor_main" in a for a in argv)),
)


def count(what: str) -> None:
    """Add one ``what`` to the run's counts (a line appended to the counts file)."""
    path = os.environ.get(COUNTS_ENV)
    if path:
        with open(path, "a") as counts:
            counts.write(what + "\n")


def _on_event(event: str, args: tuple) -> None:
    if event != "subprocess.Popen":
        return
    argv = [str(a) for a in args[1]] if isinstance(args[1], list | tuple) else str(args[1]).split()
    for what, matches in KINDS:
        if matches(argv):
            count(what)
    if "--function_to_execute" in argv and "train_transformer" in argv:
        count("fine-tunes")  # a train_transformer task (one seed by default)


def install_hook() -> None:
    """Count this process's starts, once however often it is asked (this file is imported both as the
    interpreter's sitecustomize and as tests.counting.sitecustomize)."""
    if not getattr(sys, "_sentiment_counting", False):
        sys._sentiment_counting = True
        sys.addaudithook(_on_event)


def read_counts() -> dict[str, int]:
    path = os.environ.get(COUNTS_ENV)
    counts: dict[str, int] = {}
    if path and os.path.exists(path):
        with open(path) as lines:
            for line in lines:
                counts[line.strip()] = counts.get(line.strip(), 0) + 1
    return counts


if os.environ.get(COUNTS_ENV):
    install_hook()
