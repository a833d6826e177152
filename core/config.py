"""Typed configuration sections: frozen dataclasses without defaults, filled from a mapping (a section of
params.yaml, or the dict a KFP step receives) that must name every field and nothing else. Each value is
converted to its field's type, so a KFP Struct's 8.0 arrives as the int 8. A field typed ``X | None`` is
optional: ``null`` in params.yaml, and left out of the dict a KFP step receives (KFP refuses a None inside
a dict parameter: :func:`step_mapping`)."""

import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

Section = TypeVar("Section")
PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"


def params_section(name: str, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Section ``name`` of params.yaml as a mapping: where the command lines of the packages below
    ``pipelines`` take their defaults."""
    import yaml

    return yaml.safe_load(Path(path).read_text())[name]


def optional_type(field_type: Any) -> Any:
    """``X`` for a field typed ``X | None``; None for a field that must have a value."""
    if isinstance(field_type, types.UnionType) or typing.get_origin(field_type) is typing.Union:
        kinds = typing.get_args(field_type)
        if len(kinds) == 2 and type(None) in kinds:
            return next(kind for kind in kinds if kind is not type(None))
    return None


def from_mapping(cls: type[Section], values: dict[str, Any], where: str) -> Section:
    """``cls(**values)`` with each value converted to its field's type; unknown keys, or a missing or null
    value of a field that is not optional, are an error that names ``where`` they came from (an optional
    field left out is None)."""
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if optional_type(f.type) is None}
    unknown, missing = set(values) - names, required - {k for k, v in values.items() if v is not None}
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")

    def typed(field_type: Any, value: Any) -> Any:
        kind = optional_type(field_type)
        return None if value is None else (kind or field_type)(value)

    return cls(**{f.name: typed(f.type, values.get(f.name)) for f in fields(cls)})


def step_mapping(section: Any) -> dict[str, Any]:
    """A config section as the dict a KFP step receives: its optional fields that are None left out."""
    return {name: value for name, value in asdict(section).items() if value is not None}


@dataclass(frozen=True)
class RunConfig:
    """What every step of a run shares: where it logs, what it registers, its seed and its metric."""

    experiment: str
    model_name: str
    seed: int
    metric: str
    pushgateway: str | None  # host:port; None pushes nothing
