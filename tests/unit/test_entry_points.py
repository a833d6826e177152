"""Every command line of the project: each ``python -m`` entry point answers ``--help``; the defaults come
from params.yaml (or the one dataclass that defines them); and every make target that runs one passes
arguments it accepts, read from ``make -n`` as make would run them."""

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PARAMS, REPO

PACKAGES = ("core", "models", "monitoring", "rollout", "serving", "components", "pipelines")


def entry_points() -> list[str]:
    """The modules ``python -m`` runs: those with a ``__main__`` guard, and packages' ``__main__``."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            if path.name == "__main__.py":
                found.append(module.removesuffix(".__main__"))
            elif 'if __name__ == "__main__":' in path.read_text():
                found.append(module)
    return found


ENTRY_POINTS = entry_points()


def test_the_entry_points_are_found() -> None:
    assert {
        "pipelines.run",
        "pipelines.batch",
        "serving",
        "rollout.deploy",
        "rollout.canary_analysis",
        "rollout.history",
    } <= set(ENTRY_POINTS)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_exits_zero_and_writes_nothing(module: str) -> None:
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage:"), done.stdout[:500]
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert after == before  # --help changed no file


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_main_is_parse_args_then_run(module: str) -> None:
    """Each ``main`` sets up the process (logging, environment) and calls ``run(parse_args(argv))``:
    what a command does is ``run``, callable with parsed arguments."""
    import ast

    path = REPO / (module.replace(".", "/") + ("/__main__.py" if module == "serving" else ".py"))
    functions = {f.name: f for f in ast.parse(path.read_text()).body if isinstance(f, ast.FunctionDef)}
    assert {"main", "parse_args", "run"} <= set(functions), sorted(functions)
    *setup, last = functions["main"].body
    assert ast.unparse(last) == "run(parse_args(argv))"
    assert all(ast.unparse(line).startswith(("logging.", "os.environ.setdefault")) for line in setup)


def test_the_defaults_come_from_params_yaml(monkeypatch) -> None:
    # what a shell without project variables has (make exports SERVE_IMAGE and TRAIN_IMAGE to its commands)
    for name in ("MLFLOW_TRACKING_URI", "PUSHGATEWAY", "MLOPS_HOME", "SERVE_IMAGE", "TRAIN_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    from components import monitor
    from pipelines import batch, run, schedule
    from pipelines.params import DEFAULT_PARAMS_FILE
    from rollout import canary_analysis, deploy, history

    analysis = canary_analysis.parse_args(["--tracking-uri", "http://mlflow"])
    assert (analysis.name, analysis.namespace) == (PARAMS.run.model_name, PARAMS.deploy.namespace)
    assert analysis.prometheus == PARAMS.canary_analysis.prometheus_url
    assert analysis.pushgateway == PARAMS.run.pushgateway
    assert history.parse_args([]).name == PARAMS.run.model_name
    deploying = deploy.parse_args(["status"])
    assert (deploying.name, deploying.namespace) == (PARAMS.run.model_name, PARAMS.deploy.namespace)
    monitoring = monitor.parse_args(["--predictions", "log"])
    assert monitoring.model == f"models:/{PARAMS.run.model_name}@champion"
    assert monitoring.since_hours == PARAMS.monitor.since_hours
    assert batch.batch_params(batch.parse_args(["--input", "in.csv", "--output", "out"])) == PARAMS
    training = run.parse_args([])
    assert training.params == DEFAULT_PARAMS_FILE and training.workdir == Path(".mlops")
    assert run.load_params(training) == PARAMS  # nothing overridden: params.yaml as it is
    assert schedule.parse_args([]).params == DEFAULT_PARAMS_FILE


def test_the_servers_defaults_are_its_options_defaults() -> None:
    from serving.__main__ import parse_args, serving_options
    from serving.predictor import ServingOptions

    assert serving_options(parse_args([])) == ServingOptions()


def python_commands(target: str, *variables: str) -> list[tuple[str, list[str]]]:
    """(module, arguments) of each ``.venv/bin/python -m <entry point>`` that ``make -n target`` prints."""
    printed = subprocess.run(
        ["make", "-n", target, *variables], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    commands = []
    for line in printed.stdout.replace("\\\n", " ").splitlines():
        for match in re.finditer(r"bin/python -m ([\w.]+)([^;&|)]*)", line):
            if match.group(1) in ENTRY_POINTS:
                commands.append((match.group(1), shlex.split(match.group(2))))
    return commands


def make_targets_running_python() -> list[str]:
    """Every Makefile target whose recipe runs ``$(PYTHON) -m`` on one of the project's modules."""
    targets, current = [], None
    for line in (REPO / "Makefile").read_text().splitlines():
        if match := re.match(r"^([a-z][a-z-]*):", line):
            current = match.group(1)
        elif (
            line.startswith("\t")
            and re.search(r"\$\(PYTHON\) -m (?!pip |pytest|ruff)", line)
            and current not in targets
        ):
            targets.append(current)
    return targets


MAKE_VARIABLES = {"batch-score": ("INPUT=comments.csv", "OUTPUT=scored")}


def test_every_python_target_is_checked() -> None:
    assert set(make_targets_running_python()) == {
        "pipeline-run", "compile", "serve", "monitor", "batch-score", "dashboards", "schedule", "unschedule",
        "deploy", "canary", "promote", "rollback", "analyze", "history", "status", "load",
    }  # fmt: skip


@pytest.mark.parametrize("target", make_targets_running_python())
def test_each_make_target_passes_arguments_its_module_accepts(target: str, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow")  # what with_mlflow sets before the command
    commands = python_commands(target, *MAKE_VARIABLES.get(target, ()))
    assert commands, f"make -n {target} runs no entry point"
    for module, arguments in commands:
        parse = importlib.import_module(module if module != "serving" else "serving.__main__").parse_args
        parse(arguments)  # argparse exits with 2 on an argument the module does not take
