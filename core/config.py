"""Typed configuration sections: frozen dataclasses without defaults, filled from a mapping (a section of
params.yaml, or the dict a KFP step receives) that must name every field and nothing else. Each value is
converted to its field's type, so a KFP Struct's 8.0 arrives as the int 8."""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

Section = TypeVar("Section")
PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"


def params_section(name: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Section ``name`` of params.yaml as a mapping: where the command lines of the packages below
    ``pipelines`` take their defaults."""
    import yaml

    return yaml.safe_load(Path(path).read_text())[name]


def from_mapping(cls: type[Section], values: dict[str, Any], where: str) -> Section:
    """``cls(**values)`` with each value converted to its field's type; unknown or missing keys are an
    error that names ``where`` they came from."""
    names = {f.name for f in fields(cls)}
    unknown, missing = set(values) - names, names - set(values)
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return cls(**{f.name: f.type(values[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class RunConfig:
    """What every step of a run shares: where it logs, what it registers, its seed and its metric."""

    experiment: str
    model_name: str
    seed: int
    metric: str
    pushgateway: str
