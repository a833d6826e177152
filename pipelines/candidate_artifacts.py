"""What a training step records in KFP: a Model artifact pointing at the MLflow model, and its
validation metrics. Imported inside the component bodies (the training image carries this package)."""

from components.train_linear import TrainResult


def record_candidate(result: TrainResult, family: str, model, validation_metrics) -> None:
    """Fill the step's ``Output[Model]`` (metadata + a file holding the model URI) and ``Output[Metrics]``."""
    model.metadata.update({"run_id": result.run_id, "model_uri": result.model_uri, "family": family})
    with open(model.path, "w") as pointer:
        pointer.write(result.model_uri)
    for name in ("macro_recall", "macro_f1", "accuracy"):
        validation_metrics.log_metric(name, result.validation_metrics[name])
