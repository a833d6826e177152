"""Thin KFP components: each turns artifact paths into arguments, calls the plain function of the same
name in ``components/`` and records outputs. No logic lives here.

Every step runs in the training image (``TRAIN_IMAGE``), which carries this package and kfp, so nothing
is pip-installed at run time; kfp.local's SubprocessRunner runs the same code in this environment.
"""

import os

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

TRAIN_IMAGE = os.environ.get("TRAIN_IMAGE", "sentiment-mlops-train:dev")
component = dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)


@component
def ingest(source: str, seed: int, dataset: Output[Dataset], max_rows_per_split: int = 0):
    """Read a local path, s3:// URI or Hugging Face id into a text/label/split parquet.

    Args:
        source: Where the data is (path, s3://bucket/key, or owner/name[:config] on the HF hub).
        seed: Seed of the optional per-split sample.
        dataset: The normalised data set.
        max_rows_per_split: Keep at most this many rows per split; 0 keeps every row.
    """
    from components.ingest import ingest as ingest_data

    counts = ingest_data(source, dataset.path, max_rows_per_split or None, seed)
    dataset.metadata.update({"source": source, "rows": counts})


@component
def validate(
    raw: Input[Dataset],
    max_bad_fraction: float,
    max_text_chars: int,
    clean: Output[Dataset],
    quarantine: Output[Dataset],
    report: Output[Metrics],
):
    """Quarantine bad rows with their reasons; fail when too many are bad or a class is missing."""
    from components.validate import validate as validate_data

    result = validate_data(raw.path, clean.path, quarantine.path, max_bad_fraction, max_text_chars)
    report.log_metric("rows_in", result.rows_in)
    report.log_metric("rows_clean", result.rows_clean)
    for reason, count in result.quarantined.items():
        report.log_metric(f"quarantined_{reason}", count)


@component
def preprocess(
    clean: Input[Dataset],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    split_sizes: Output[Metrics],
):
    """Normalise texts and split into train/validation/test (keeping the source's own splits)."""
    from components.preprocess import preprocess as preprocess_data

    sizes = preprocess_data(
        clean.path, train.path, validation.path, test.path, validation_fraction, test_fraction, seed
    )
    for name, size in sizes.items():
        split_sizes.log_metric(f"{name}_rows", size)


@component
def prepare_out_of_domain(
    sources: list,
    max_rows: int,
    max_text_chars: int,
    seed: int,
    out_of_domain: Output[Dataset],
    report: Output[Metrics],
):
    """Read, clean and sample each out-of-domain source into one text/label/domain parquet.

    Args:
        sources: Paths, s3:// URIs or HF ids of labelled sets from other domains; may be empty.
        max_rows: Keep a stratified sample of at most this many rows per source (0 keeps all).
        max_text_chars: Longer texts are dropped, as in validate.
        seed: Seed of the sample.
        out_of_domain: The combined set.
        report: Rows kept and dropped (by reason) per domain.
    """
    from components.prepare_out_of_domain import prepare_out_of_domain as prepare

    for domain, counts in prepare(sources, out_of_domain.path, max_rows, max_text_chars, seed).items():
        for name, count in counts.items():
            report.log_metric(f"{domain}_{name}", count)


@component
def train_linear(
    train: Input[Dataset],
    validation: Input[Dataset],
    tracking_uri: str,
    experiment: str,
    featurizer: str,
    encoder_id: str,
    classifier: str,
    c: float,
    imbalance: str,
    trials: int,
    metric: str,
    batch_size: int,
    seed: int,
    run_params: str,
    model: Output[Model],
    validation_metrics: Output[Metrics],
):
    """Embeddings or TF-IDF + linear classifier (C and imbalance tuned over ``trials`` Optuna trials, if any),
    logged to MLflow; the Model artifact points at it."""
    from components.train_linear import train_linear as train_linear_model
    from pipelines.candidate_artifacts import record_candidate

    result = train_linear_model(
        train.path, validation.path, tracking_uri, experiment, featurizer=featurizer, encoder_id=encoder_id,
        classifier=classifier, c=c, imbalance=imbalance, trials=trials, metric=metric, batch_size=batch_size,
        seed=seed, run_params=run_params,
    )  # fmt: skip
    record_candidate(result, f"linear-{featurizer}", model, validation_metrics)


@component
def train_transformer(
    train: Input[Dataset],
    validation: Input[Dataset],
    tracking_uri: str,
    experiment: str,
    model_id: str,
    offline_fallback: str,
    max_length: int,
    batch_size: int,
    learning_rate: float,
    epochs: float,
    max_steps: int,
    max_minutes: float,
    eval_steps: int,
    patience: int,
    label_smoothing: float,
    imbalance: str,
    threads: int,
    seed: int,
    run_params: str,
    model: Output[Model],
    validation_metrics: Output[Metrics],
):
    """Fine-tune a Hugging Face classifier within a budget, logged to MLflow; the Model artifact points at it.

    ``max_steps`` and ``threads`` of 0 leave the number of steps to ``epochs`` and threads to torch.
    """
    from components.train_transformer import train_transformer as train_transformer_model
    from pipelines.candidate_artifacts import record_candidate

    result = train_transformer_model(
        train.path, validation.path, tracking_uri, experiment, model_id=model_id,
        offline_fallback=offline_fallback, max_length=max_length, batch_size=batch_size,
        learning_rate=learning_rate, epochs=epochs, max_steps=max_steps or None, max_minutes=max_minutes,
        eval_steps=eval_steps, patience=patience, label_smoothing=label_smoothing, imbalance=imbalance,
        threads=threads or None, seed=seed, run_params=run_params,
    )  # fmt: skip
    record_candidate(result, "transformer", model, validation_metrics)


@component
def ensemble(
    linear_embeddings: Input[Model],
    linear_tfidf: Input[Model],
    transformer: Input[Model],
    validation: Input[Dataset],
    tracking_uri: str,
    experiment: str,
    weighting: str,
    metric: str,
    run_params: str,
    model: Output[Model],
    validation_metrics: Output[Metrics],
):
    """Soft-voting ensemble of the other candidates (``weighting``: tuned on ``metric`` or equal), logged to
    MLflow; the Model artifact points at it."""
    from components.ensemble import ensemble as ensemble_model
    from pipelines.candidate_artifacts import record_candidate

    members = [m.metadata["model_uri"] for m in (linear_embeddings, linear_tfidf, transformer)]
    result = ensemble_model(members, validation.path, tracking_uri, experiment, run_params, weighting, metric)
    record_candidate(result, "ensemble", model, validation_metrics)


@component
def evaluate(
    model: Input[Model],
    test: Input[Dataset],
    out_of_domain: Input[Dataset],
    tracking_uri: str,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    confusion_matrix: Output[HTML],
    model_card: Output[Markdown],
):
    """Score the logged model on the test split and the out-of-domain sets; metrics and the model card go
    to MLflow and to KFP."""
    import base64
    import io

    from components.evaluate import evaluate as evaluate_model
    from core.labels import LABELS

    png = io.BytesIO()
    result = evaluate_model(
        model.metadata["run_id"],
        model.metadata["model_uri"],
        test.path,
        tracking_uri,
        png,
        out_of_domain.path,
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    for domain, scores in result.out_of_domain.items():
        for name, value in scores.items():
            metrics.log_metric(f"ood_{domain}_{name}", value)
    classification.log_confusion_matrix(list(LABELS), result.confusion_matrix)
    image = base64.b64encode(png.getvalue()).decode("ascii")
    with open(confusion_matrix.path, "w") as page:
        page.write(f'<img alt="test confusion matrix" src="data:image/png;base64,{image}">')
    with open(model_card.path, "w") as card:
        card.write(result.model_card)


@component
def gate(
    linear_embeddings: Input[Model],
    linear_tfidf: Input[Model],
    transformer: Input[Model],
    ensemble: Input[Model],
    test: Input[Dataset],
    out_of_domain: Input[Dataset],
    tracking_uri: str,
    model_name: str,
    metric: str,
    min_improvement: float,
    min_score: float,
    confidence: float,
    bootstrap_samples: int,
    seed: int,
    ood_weight: float,
    int8_max_loss: float,
    pushgateway: str,
) -> str:
    """Promote the best candidate to the registry's ``champion`` alias only if it beats the champion
    (margin and paired-bootstrap interval) on the test split, weighed with the out-of-domain sets by
    ``ood_weight``; and accept the winner's INT8 runtime if it loses at most ``int8_max_loss``. Returns
    the decision as JSON, and pushes it to ``pushgateway`` when one is given."""
    import json
    from dataclasses import asdict

    from components.gate import gate as gate_model

    models = (linear_embeddings, linear_tfidf, transformer, ensemble)
    candidates = [(m.metadata["run_id"], m.metadata["model_uri"]) for m in models]
    result = gate_model(
        candidates, test.path, tracking_uri, model_name, metric=metric, min_improvement=min_improvement,
        min_score=min_score, confidence=confidence, bootstrap_samples=bootstrap_samples, seed=seed,
        ood_path=out_of_domain.path, ood_weight=ood_weight, int8_max_loss=int8_max_loss,
    )  # fmt: skip
    if pushgateway:
        from monitoring.pushgateway import push_gate_metrics

        push_gate_metrics(
            pushgateway, model_name, result, {m.metadata["run_id"]: m.metadata["family"] for m in models}
        )
    return json.dumps(asdict(result))


@component
def deploy(
    decision: str,
    model_name: str,
    namespace: str,
    serve_image: str,
    canary_percent: int,
    tracking_uri: str,
    manifest: Output[Artifact],
) -> str:
    """Serve the version the gate promoted: create the InferenceService, or add it as a canary with
    ``canary_percent`` of the traffic when one serves, each time waiting for it to be Ready before the
    route and the ``production`` alias move. Outside a cluster (kfp.local) it only writes the manifests it
    would apply. Returns the outcome (created, canary, replaced, unchanged, manifest, skipped)."""
    import json

    from rollout.deploy import deploy_champion
    from rollout.inference_service import ServingSettings
    from core.tracking import use_tracking

    use_tracking(tracking_uri)
    settings = ServingSettings(image=serve_image, name=model_name, namespace=namespace)
    outcome = deploy_champion(json.loads(decision), settings, canary_percent, manifest.path)
    manifest.metadata.update({"outcome": outcome, "namespace": namespace})
    return outcome


@component
def analyze(
    outcome: str,
    canary_analysis: dict,
    model_name: str,
    namespace: str,
    tracking_uri: str,
    pushgateway: str,
    verdict: Output[Metrics],
) -> str:
    """After a canary deploy: judge the canary against the stable version on Prometheus at an interval
    until a verdict (promote, rollback) or the timeout, record it (registry tags, MLflow, Pushgateway) and
    act on it. Any other deploy outcome (a first version, a local run) has nothing to judge. Returns the
    verdict."""
    if outcome != "canary":
        return f"skipped: deploy outcome {outcome}"
    from rollout.canary_analysis import AnalysisSettings, run_analysis
    from rollout.deploy import Cluster, Registry, load_kube_config
    from rollout.inference_service import ServingSettings

    load_kube_config()
    settings = AnalysisSettings.from_config(canary_analysis, namespace, model_name)
    serving = ServingSettings(image="", name=model_name, namespace=namespace)
    registry = Registry(model_name, tracking_uri)
    result = run_analysis(settings, Cluster(), registry, serving, tracking_uri, pushgateway)
    for check in result.checks:
        if check.p_value is not None:
            verdict.log_metric(f"{check.name}_p_value", check.p_value)
    verdict.log_metric("intervals", result.intervals)
    verdict.metadata.update({"decision": result.decision, "reason": result.reason})
    return result.decision


@component
def monitor(
    predictions: str,
    model_uri: str,
    tracking_uri: str,
    threshold: float,
    since_hours: float,
    report: Output[Markdown],
    drift: Output[Metrics],
) -> str:
    """Compare the predictor's logged predictions (folder or s3:// prefix) with the reference of the version
    ``model_uri`` names; the drift report goes to MLflow and to KFP. Returns the drifted features as JSON."""
    import json

    from components.monitor import monitor as monitor_drift

    result = monitor_drift(predictions, model_uri, tracking_uri, threshold=threshold, since_hours=since_hours)
    for feature, value in result.psi.items():
        drift.log_metric(f"psi_{feature}", value)
    drift.log_metric("rows", result.rows)
    with open(report.path, "w") as page:
        page.write(result.markdown())
    return json.dumps(result.drifted)
