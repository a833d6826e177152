"""Which runtime a registered version runs in, FP32 or INT8: the gate's verdict (tag ``int8_accepted``)
decides, for the predictor and for batch scoring alike."""

from models.bundle import VersionDetails

RUNTIMES = ("auto", "fp32", "int8")


def has_int8_runtime(pinned_uri: str) -> bool:
    """Whether the logged model can run in INT8 (its pyfunc config has a ``runtime`` setting: the
    transformer, the embeddings linear models and the ensemble, not the TF-IDF ones)."""
    from mlflow.models import Model as LoggedModel
    from mlflow.pyfunc import FLAVOR_NAME, MODEL_CONFIG

    config = LoggedModel.load(pinned_uri).flavors[FLAVOR_NAME].get(MODEL_CONFIG) or {}
    return "runtime" in config


def choose_runtime(details: VersionDetails | None, requested: str, has_int8: bool) -> tuple[str, str]:
    """(runtime, why) for ``requested`` (one of RUNTIMES): ``auto`` serves INT8 where the gate accepted it
    for this version (tag ``int8_accepted``) and FP32 otherwise; ``fp32`` always FP32; ``int8`` INT8
    wherever the model has one, even against the gate's verdict (for measurements)."""
    verdict = None if details is None else details.int8_accepted
    if requested == "fp32":
        return "fp32", "--runtime fp32"
    if not has_int8:
        return "fp32", "the model has no INT8 runtime"
    if verdict:
        return "int8", "the gate accepted its INT8 runtime"
    if requested == "int8":
        return "int8", f"--runtime int8, although the gate did not accept it (int8_accepted={verdict})"
    return "fp32", f"the gate did not accept its INT8 runtime (int8_accepted={verdict})"


def load_in_runtime(pinned_uri: str, runtime: str):
    """The pyfunc model at ``pinned_uri`` loaded in ``runtime`` (fp32 or int8)."""
    import mlflow

    return mlflow.pyfunc.load_model(
        pinned_uri, model_config={"runtime": runtime} if runtime != "fp32" else None
    )
