"""Decode request payloads into texts and encode predictions as v1 / v2 answers.

Every client error raises ``kserve.errors.InvalidInput`` (HTTP 400, gRPC INVALID_ARGUMENT) with a message
saying what is wrong.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from core.labels import LABELS, probability_columns


@dataclass(frozen=True)
class RequestLimits:
    """Per-request limits: texts per request and characters per text (longer texts are rejected, not
    truncated: the models truncate tokens themselves, so a longer text is a client mistake)."""

    max_instances: int = 256
    max_text_chars: int = 5000


def _check_count(count: int, limits: RequestLimits) -> None:
    if count > limits.max_instances:
        raise InvalidInput(f"{count} texts in one request; the limit is {limits.max_instances}")


def _check_text(value: object, where: str, limits: RequestLimits) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{where} is not valid UTF-8") from exc
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{where} is empty")
    if len(value) > limits.max_text_chars:
        raise InvalidInput(f"{where} has {len(value)} characters; the limit is {limits.max_text_chars}")
    return value


def texts_from_v1(payload: object, limits: RequestLimits = RequestLimits()) -> list[str]:
    """``{"instances": ["text", ...]}`` or ``{"instances": [{"text": "..."}, ...]}``."""
    if isinstance(payload, bytes | str):
        raise InvalidInput("the body was not read as JSON: send it with Content-Type: application/json")
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput('expected a JSON object with "instances": a list of texts')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('"instances" must be a non-empty list of texts')
    _check_count(len(instances), limits)
    texts = []
    for i, item in enumerate(instances):
        if isinstance(item, dict):
            if "text" not in item:
                raise InvalidInput(f'instances[{i}] is an object without a "text" field')
            item = item["text"]
        texts.append(_check_text(item, f"instances[{i}]", limits))
    return texts


def texts_from_v2(request: InferRequest, limits: RequestLimits = RequestLimits()) -> list[str]:
    """One BYTES input tensor of shape [n] (or [n, 1]) holding UTF-8 texts."""
    if len(request.inputs) != 1:
        raise InvalidInput(f"expected exactly one input tensor of texts, got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidInput(f'input "{tensor.name}" must have datatype BYTES, got {tensor.datatype}')
    if any(not isinstance(d, int) or d < 0 for d in tensor.shape):
        raise InvalidInput(f'input "{tensor.name}" has shape {tensor.shape}: a request needs sizes >= 0')
    try:
        values = tensor.as_numpy()
    except Exception as exc:  # shape/data mismatch in the request body
        raise InvalidInput(f'input "{tensor.name}" does not match its shape: {exc}') from exc
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.size == 0:
        raise InvalidInput(f'input "{tensor.name}" must have shape [n] with n >= 1, got {list(values.shape)}')
    _check_count(values.size, limits)
    return [_check_text(v, f"{tensor.name}[{i}]", limits) for i, v in enumerate(values.tolist())]


@dataclass(frozen=True)
class Predictions:
    """The model's answers for some texts: labels, probabilities (``[n, classes]`` in LABELS order) and
    the registered version that answered. Slicing gives the rows of one request of a batch."""

    labels: list[str]
    probabilities: np.ndarray
    version: str

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, version: str) -> "Predictions":
        """From a model's output frame (``label`` and one probability column per class)."""
        probabilities = frame[probability_columns()].to_numpy(dtype=np.float32)
        return cls(frame["label"].tolist(), probabilities, version)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, rows: slice) -> "Predictions":
        return Predictions(self.labels[rows], self.probabilities[rows], self.version)


def v1_response(predictions: Predictions, ids: list[str]) -> dict:
    """``{"predictions": [{"id": ..., "label": ..., "probabilities": {class: p}}], "model_version": ...}``."""
    return {
        "predictions": [
            {"id": answer_id, "label": label, "probabilities": dict(zip(LABELS, row, strict=True))}
            for answer_id, label, row in zip(
                ids, predictions.labels, predictions.probabilities.tolist(), strict=True
            )
        ],
        "model_version": predictions.version,
    }


def v2_response(
    predictions: Predictions, model_name: str, response_id: str, ids: list[str], raw_outputs: bool = False
) -> InferResponse:
    """Outputs ``label`` (BYTES [n]), ``probabilities`` (FP32 [n, 3], columns in LABELS order) and ``id``
    (BYTES [n], each answer's id for feedback). ``raw_outputs`` (for gRPC) puts every output in
    ``raw_output_contents``, as Triton does and its client (tritonclient) reads; REST answers in JSON."""
    probabilities = predictions.probabilities  # labels stay a str list: numpy unicode arrays break kserve
    return InferResponse(
        response_id=response_id,
        model_name=model_name,
        model_version=predictions.version,
        infer_outputs=[
            InferOutput("label", [len(predictions)], "BYTES", predictions.labels),
            InferOutput("id", [len(predictions)], "BYTES", ids),
            InferOutput("probabilities", list(probabilities.shape), "FP32", probabilities.flatten().tolist()),
        ],
        parameters={"labels": ",".join(LABELS)},
        use_binary_outputs=raw_outputs,
    )
