"""Typed view of ``params.yaml``: one section per step, each that step's config dataclass; every default
is defined once, in the file."""

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from components.batch_score import BatchConfig
from components.deploy import DeployConfig
from components.ensemble import EnsembleConfig
from components.gate import GateConfig
from components.ingest import IngestConfig
from components.monitor import MonitorConfig
from components.prepare_out_of_domain import OutOfDomainConfig
from components.preprocess import PreprocessConfig
from components.retrain import RetrainConfig
from components.train_linear import LinearConfig
from components.train_transformer import TransformerConfig
from components.validate import ValidateConfig
from core.config import PARAMS_FILE, RunConfig, from_mapping, step_mapping
from pipelines.task_settings import ClusterConfig
from rollout.canary_analysis import CanaryAnalysisConfig

DEFAULT_PARAMS_FILE = PARAMS_FILE


@dataclass(frozen=True)
class PipelineParams:
    run: RunConfig
    ingest: IngestConfig
    validate: ValidateConfig
    preprocess: PreprocessConfig
    out_of_domain: OutOfDomainConfig
    train_linear: LinearConfig
    train_transformer: TransformerConfig
    ensemble: EnsembleConfig
    gate: GateConfig
    deploy: DeployConfig
    canary_analysis: CanaryAnalysisConfig
    monitor: MonitorConfig
    retrain: RetrainConfig
    batch_score: BatchConfig  # the batch pipeline's
    cluster: ClusterConfig  # compiled into the pipelines' tasks, not passed to the steps

    @classmethod
    def load(cls, path: Path = DEFAULT_PARAMS_FILE) -> "PipelineParams":
        """Read ``path``; an unknown or missing section or key is an error."""
        return cls.from_dict(yaml.safe_load(Path(path).read_text()), str(path))

    @classmethod
    def from_dict(cls, values: dict, where: str) -> "PipelineParams":
        """From ``values`` (as :meth:`as_dict` gives them); ``where`` names them in errors."""
        names = {f.name for f in fields(cls)}
        if set(values) != names:
            unknown, missing = sorted(set(values) - names), sorted(names - set(values))
            raise ValueError(f"{where}: unknown sections {unknown}, missing sections {missing}")

        def section(f):
            if hasattr(f.type, "from_config"):
                return f.type.from_config(values[f.name], f"{where}: {f.name}")
            return from_mapping(f.type, values[f.name], f"{where}: {f.name}")

        return cls(**{f.name: section(f) for f in fields(cls)})

    def override(self, section: str, **values) -> "PipelineParams":
        """A copy with the non-None ``values`` replacing those of ``section``."""
        given = {k: v for k, v in values.items() if v is not None}
        return replace(self, **{section: replace(getattr(self, section), **given)}) if given else self

    def as_dict(self) -> dict:
        return asdict(self)

    def step_sections(self) -> dict[str, dict]:
        """Every section as the dict its steps receive through KFP (core/config.step_mapping: the optional
        values that are None left out)."""
        return {f.name: step_mapping(getattr(self, f.name)) for f in fields(self) if f.name != "cluster"}

    def data_fingerprints(self) -> str:
        """Each source the training pipeline reads (ingest's and the out-of-domain sets) with what it
        holds now (core/lineage.source_fingerprint), as JSON: the steps that read them take it as an
        input, so KFP's cache key changes when a source does."""
        from core.lineage import sources_fingerprints

        return sources_fingerprints(
            [*self.ingest.sources, *self.ingest.extra_train, *self.out_of_domain.sources]
        )

    def check_sources(self) -> None:
        """Refuse an out-of-domain set that is also a training source (by name, as the sets are named):
        its rows would be scored as unseen data. A training source's own test slice is already held out."""
        from core.lineage import source_name

        training = {source_name(s) for s in [*self.ingest.sources, *self.ingest.extra_train]}
        both = sorted(training & {source_name(s) for s in self.out_of_domain.sources})
        if both:
            raise ValueError(
                f"{both} both train and are scored as out-of-domain sets: drop them from "
                "out_of_domain.sources (OOD=); as training sources their own test slices are held out "
                "and judged by the gate"
            )

    def lineage(self) -> str:
        """Every parameter as flat ``section.key`` names (JSON), logged to each candidate's MLflow run."""
        from core.lineage import flat_params

        return json.dumps(flat_params(self.as_dict()), sort_keys=True)
