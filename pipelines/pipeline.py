"""The training pipeline: ingest -> validate -> preprocess -> three candidates trained in parallel
(a linear classifier on embeddings and one on TF-IDF, fine-tuned transformer) and their soft-voting ensemble -> evaluate
each (on the test split and the out-of-domain sets) -> gate -> deploy -> analyze (a canary, on a cluster)."""

from kfp import compiler, dsl, kubernetes

from pipelines.steps import (
    analyze,
    deploy,
    ensemble,
    evaluate,
    gate,
    ingest,
    monitor,
    prepare_out_of_domain,
    preprocess,
    train_linear,
    train_transformer,
    validate,
)

PIPELINE_NAME = "sentiment-training"
MONITORING_PIPELINE_NAME = "sentiment-monitoring"
# On a cluster every step reads the MinIO credentials from this Secret and the S3 endpoint from this
# ConfigMap (namespace kubeflow; manifests/kfp), for s3:// sources and MLflow's artifacts in MinIO.
OBJECT_STORE_SECRET = "minio-credentials"
OBJECT_STORE_CONFIG_MAP = "object-store"


def with_object_store(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Expose the object store's credentials and endpoint to ``task`` as env (ignored by kfp.local)."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    kubernetes.use_secret_as_env(task, OBJECT_STORE_SECRET, secret_key_to_env={k: k for k in keys})
    kubernetes.use_config_map_as_env(
        task,
        OBJECT_STORE_CONFIG_MAP,
        config_map_key_to_env={"MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL"},
    )
    return task


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train sentiment classifiers of two families, evaluate them and gate the best into MLflow.",
)
def sentiment_pipeline(
    source: str,
    max_rows_per_split: int,
    seed: int,
    max_bad_fraction: float,
    max_text_chars: int,
    validation_fraction: float,
    test_fraction: float,
    ood_sources: list,
    ood_max_rows: int,
    encoder_id: str,
    classifier: str,
    linear_trials: int,
    c: float,
    imbalance: str,
    batch_size: int,
    transformer_model_id: str,
    transformer_offline_fallback: str,
    transformer_max_length: int,
    transformer_batch_size: int,
    transformer_learning_rate: float,
    transformer_epochs: float,
    transformer_max_steps: int,
    transformer_max_minutes: float,
    transformer_eval_steps: int,
    transformer_patience: int,
    transformer_label_smoothing: float,
    transformer_imbalance: str,
    ensemble_weighting: str,
    torch_threads: int,
    experiment: str,
    model_name: str,
    gate_metric: str,
    min_improvement: float,
    min_score: float,
    gate_confidence: float,
    gate_bootstrap_samples: int,
    gate_ood_weight: float,
    gate_int8_max_loss: float,
    pushgateway: str,
    deploy_namespace: str,
    deploy_canary_percent: int,
    serve_image: str,
    canary_analysis: dict,
    tracking_uri: str,
    run_params: str,
) -> str:
    """Parameters mirror ``params.yaml`` (see pipelines/params.py), plus where MLflow is
    (``tracking_uri``) and the whole parameter set as JSON (``run_params``) for the runs' lineage.
    Returns the gate's decision as JSON; the deploy step then serves the promoted version.
    """
    ingested = ingest(source=source, seed=seed, max_rows_per_split=max_rows_per_split)
    validated = validate(
        raw=ingested.outputs["dataset"], max_bad_fraction=max_bad_fraction, max_text_chars=max_text_chars
    )
    splits = preprocess(
        clean=validated.outputs["clean"],
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    train, validation, test = (splits.outputs[name] for name in ("train", "validation", "test"))
    prepared = prepare_out_of_domain(
        sources=ood_sources, max_rows=ood_max_rows, max_text_chars=max_text_chars, seed=seed
    )
    out_of_domain = prepared.outputs["out_of_domain"]
    candidates = {}
    for featurizer in ("embeddings", "tfidf"):
        candidates[f"linear_{featurizer}"] = train_linear(
            train=train, validation=validation, tracking_uri=tracking_uri, experiment=experiment,
            featurizer=featurizer, encoder_id=encoder_id, classifier=classifier, c=c, imbalance=imbalance,
            trials=linear_trials, metric=gate_metric, batch_size=batch_size, seed=seed, run_params=run_params,
        ).set_display_name(f"train-linear-{featurizer}")  # fmt: skip
    candidates["transformer"] = train_transformer(
        train=train, validation=validation, tracking_uri=tracking_uri, experiment=experiment,
        model_id=transformer_model_id, offline_fallback=transformer_offline_fallback,
        max_length=transformer_max_length, batch_size=transformer_batch_size,
        learning_rate=transformer_learning_rate, epochs=transformer_epochs, max_steps=transformer_max_steps,
        max_minutes=transformer_max_minutes, eval_steps=transformer_eval_steps, patience=transformer_patience,
        label_smoothing=transformer_label_smoothing, imbalance=transformer_imbalance,
        threads=torch_threads, seed=seed, run_params=run_params,
    )  # fmt: skip
    candidates["ensemble"] = ensemble(
        **{name: task.outputs["model"] for name, task in candidates.items()},
        validation=validation, tracking_uri=tracking_uri, experiment=experiment, weighting=ensemble_weighting,
        metric=gate_metric, run_params=run_params,
    )  # fmt: skip
    evaluations = [
        evaluate(
            model=task.outputs["model"], test=test, out_of_domain=out_of_domain, tracking_uri=tracking_uri
        ).set_display_name(f"evaluate-{name.replace('_', '-')}")
        for name, task in candidates.items()
    ]
    gated = gate(
        **{name: task.outputs["model"] for name, task in candidates.items()},
        test=test, out_of_domain=out_of_domain, tracking_uri=tracking_uri, model_name=model_name,
        metric=gate_metric, min_improvement=min_improvement, min_score=min_score, confidence=gate_confidence,
        bootstrap_samples=gate_bootstrap_samples, seed=seed, ood_weight=gate_ood_weight,
        int8_max_loss=gate_int8_max_loss, pushgateway=pushgateway,
    )  # fmt: skip
    for evaluation in evaluations:
        gated.after(evaluation)
    deployed = deploy(
        decision=gated.output, model_name=model_name, namespace=deploy_namespace, serve_image=serve_image,
        canary_percent=deploy_canary_percent, tracking_uri=tracking_uri,
    )  # fmt: skip
    analyzed = analyze(
        outcome=deployed.outputs["Output"], canary_analysis=canary_analysis, model_name=model_name,
        namespace=deploy_namespace, tracking_uri=tracking_uri, pushgateway=pushgateway,
    )  # fmt: skip
    tasks = (
        ingested,
        validated,
        splits,
        prepared,
        *candidates.values(),
        *evaluations,
        gated,
        deployed,
        analyzed,
    )
    for task in tasks:
        with_object_store(task)
    return gated.output


@dsl.pipeline(
    name=MONITORING_PIPELINE_NAME,
    description="Judge the served model's logged predictions against its reference; report drift to MLflow.",
)
def monitoring_pipeline(
    predictions: str, model_uri: str, tracking_uri: str, threshold: float = 0.25, since_hours: float = 0.0
) -> str:
    """One monitor step (schedule it as a recurring run on the cluster); returns the drifted features."""
    judged = monitor(
        predictions=predictions, model_uri=model_uri, tracking_uri=tracking_uri, threshold=threshold,
        since_hours=since_hours,
    )  # fmt: skip
    with_object_store(judged)
    return judged.outputs["Output"]


def compile_pipeline(package_path: str, pipeline=sentiment_pipeline) -> str:
    """Compile ``pipeline`` (the training pipeline unless told) to KFP IR YAML at ``package_path``."""
    compiler.Compiler().compile(pipeline, package_path)
    return package_path
