"""The training pipeline: ingest -> validate -> preprocess -> train_svm -> evaluate -> gate."""

from kfp import compiler, dsl

from pipelines.steps import evaluate, gate, ingest, preprocess, train_svm, validate

PIPELINE_NAME = "sentiment-training"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train a sentiment classifier, evaluate it and gate it into the MLflow registry.",
)
def sentiment_pipeline(
    source: str,
    max_rows_per_split: int,
    seed: int,
    max_bad_fraction: float,
    max_text_chars: int,
    validation_fraction: float,
    test_fraction: float,
    encoder_id: str,
    classifier: str,
    c: float,
    class_weight: str,
    batch_size: int,
    experiment: str,
    model_name: str,
    gate_metric: str,
    min_improvement: float,
    min_score: float,
    tracking_uri: str,
    run_params: str,
) -> str:
    """Parameters mirror ``params.yaml`` (see pipelines/params.py), plus where MLflow is
    (``tracking_uri``) and the whole parameter set as JSON (``run_params``) for the run's lineage.
    Returns the gate's decision as JSON.
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
    trained = train_svm(
        train=splits.outputs["train"],
        validation=splits.outputs["validation"],
        tracking_uri=tracking_uri,
        experiment=experiment,
        encoder_id=encoder_id,
        classifier=classifier,
        c=c,
        class_weight=class_weight,
        batch_size=batch_size,
        seed=seed,
        run_params=run_params,
    )
    evaluated = evaluate(
        model=trained.outputs["model"], test=splits.outputs["test"], tracking_uri=tracking_uri
    )
    gated = gate(
        model=trained.outputs["model"],
        test=splits.outputs["test"],
        tracking_uri=tracking_uri,
        model_name=model_name,
        metric=gate_metric,
        min_improvement=min_improvement,
        min_score=min_score,
    ).after(evaluated)
    return gated.output


def compile_pipeline(package_path: str) -> str:
    """Compile the pipeline to KFP IR YAML at ``package_path``."""
    compiler.Compiler().compile(sentiment_pipeline, package_path)
    return package_path
