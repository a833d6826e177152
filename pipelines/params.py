"""Typed view of ``params.yaml``: the pipeline's parameters, each default defined once (in the file)."""

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

DEFAULT_PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"


@dataclass(frozen=True)
class PipelineParams:
    source: str
    max_rows_per_split: int
    seed: int
    max_bad_fraction: float
    max_text_chars: int
    validation_fraction: float
    test_fraction: float
    ood_sources: list[str]
    ood_max_rows: int
    encoder_id: str
    classifier: str
    linear_trials: int
    c: float
    imbalance: str
    batch_size: int
    transformer_model_id: str
    transformer_offline_fallback: str
    transformer_max_length: int
    transformer_batch_size: int
    transformer_learning_rate: float
    transformer_epochs: float
    transformer_max_steps: int
    transformer_max_minutes: float
    transformer_eval_steps: int
    transformer_patience: int
    transformer_label_smoothing: float
    transformer_imbalance: str
    ensemble_weighting: str
    torch_threads: int
    experiment: str
    model_name: str
    gate_metric: str
    min_improvement: float
    min_score: float
    gate_confidence: float
    gate_bootstrap_samples: int
    gate_ood_weight: float
    gate_int8_max_loss: float
    pushgateway: str
    deploy_namespace: str
    deploy_canary_percent: int
    serve_image: str
    canary_analysis: dict

    @classmethod
    def load(cls, path: Path = DEFAULT_PARAMS_FILE, **overrides) -> "PipelineParams":
        """Read ``path``; unknown or missing keys are an error; non-None ``overrides`` win."""
        values = yaml.safe_load(Path(path).read_text())
        names = {f.name for f in fields(cls)}
        unknown, missing = set(values) - names, names - set(values)
        if unknown or missing:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        typed = {f.name: f.type(values[f.name]) for f in fields(cls)}
        return replace(cls(**typed), **{k: v for k, v in overrides.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)
