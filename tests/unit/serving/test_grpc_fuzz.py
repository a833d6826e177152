"""A generated corpus of malformed gRPC ``ModelInfer`` requests (hypothesis, fixed seed) against the real
model server: wrong datatypes and shapes, contents in the wrong field, ``raw_input_contents`` garbage,
missing or extra inputs, too many or too long texts, invalid UTF-8. Every one is answered
INVALID_ARGUMENT with a message (never INTERNAL or UNKNOWN), and the server stays healthy and correct."""

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from tests.conftest import SERVER_LIMITS

EXAMPLES = 520
Tensor = pb.ModelInferRequest.InferInputTensor
Contents = pb.InferTensorContents
NUMERIC = ["BOOL", "UINT8", "UINT32", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64"]
CONTENT_FIELDS = {
    "bool_contents": st.lists(st.booleans(), min_size=1, max_size=4),
    "int_contents": st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4),
    "int64_contents": st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=4),
    "uint_contents": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
    "fp32_contents": st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=4),
    "fp64_contents": st.lists(st.floats(allow_nan=False), min_size=1, max_size=4),
}
good_bytes = st.lists(
    st.text(min_size=1, max_size=30).filter(str.strip).map(str.encode), min_size=1, max_size=3
)


@st.composite
def numeric_contents(draw) -> Tensor:
    """A numeric tensor where texts belong, its contents in some numeric field."""
    field = draw(st.sampled_from(sorted(CONTENT_FIELDS)))
    values = draw(CONTENT_FIELDS[field])
    return Tensor(
        name="text",
        datatype=draw(st.sampled_from(NUMERIC)),
        shape=[len(values)],
        contents=Contents(**{field: values}),
    )


@st.composite
def wrong_shape(draw) -> Tensor:
    """BYTES texts whose shape does not fit them (or has a negative or a third axis)."""
    texts = draw(good_bytes)
    shape = draw(
        st.one_of(
            st.lists(st.integers(-3, 8), min_size=1, max_size=3).filter(lambda s: s != [len(texts)]),
            st.just([len(texts), 2, 2]),
            st.just([]),
        )
    )
    if shape in ([len(texts), 1], [1, len(texts)]) and len(texts) == 1:
        shape = [-1]
    return Tensor(name="text", datatype="BYTES", shape=shape, contents=Contents(bytes_contents=texts))


@st.composite
def bad_texts(draw) -> Tensor:
    """A well-formed BYTES tensor of texts the predictor must refuse: blank, too long, too many, not UTF-8."""
    texts = draw(
        st.one_of(
            st.lists(st.text(alphabet=" \t\n", max_size=4).map(str.encode), min_size=1, max_size=3),
            st.just([b"x" * (SERVER_LIMITS["max_text_chars"] + 1)]),
            st.just([b"ok"] * (SERVER_LIMITS["max_instances"] + 1)),
            st.lists(st.binary(min_size=1, max_size=8).filter(not_utf8), min_size=1, max_size=3),
        )
    )
    return Tensor(name="text", datatype="BYTES", shape=[len(texts)], contents=Contents(bytes_contents=texts))


def not_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return True
    return False


@st.composite
def raw_garbage(draw) -> tuple[list[Tensor], list[bytes]]:
    """Raw input contents that are not length-prefixed UTF-8 texts, or not one per input."""
    count = draw(st.integers(1, 3))
    inputs = [Tensor(name="text", datatype="BYTES", shape=[count])]
    raw = draw(st.lists(st.binary(max_size=24), min_size=0, max_size=3))
    return inputs, raw


@st.composite
def malformed_request(draw) -> pb.ModelInferRequest:
    kind = draw(st.sampled_from(["numeric", "shape", "texts", "raw", "inputs", "mixed"]))
    raw: list[bytes] = []
    if kind == "numeric":
        inputs = [draw(numeric_contents())]
    elif kind == "shape":
        inputs = [draw(wrong_shape())]
    elif kind == "texts":
        inputs = [draw(bad_texts())]
    elif kind == "raw":
        inputs, raw = draw(raw_garbage())
    elif kind == "inputs":  # none, or several
        inputs = draw(
            st.sampled_from([[], [draw(bad_texts()), draw(wrong_shape())], [draw(numeric_contents())] * 2])
        )
    else:  # BYTES declared, the texts sent as numbers
        values = draw(CONTENT_FIELDS["fp32_contents"])
        inputs = [
            Tensor(
                name="text", datatype="BYTES", shape=[len(values)], contents=Contents(fp32_contents=values)
            )
        ]
    return pb.ModelInferRequest(model_name="sentiment", inputs=inputs, raw_input_contents=raw)


def raw_bytes_tensor(texts: list[bytes]) -> bytes:
    """Valid raw BYTES: each text with its 4-byte little-endian length."""
    return b"".join(len(t).to_bytes(4, "little") + t for t in texts)


@pytest.fixture(scope="module")
def stub(model_server):
    _, grpc_address = model_server
    with grpc.insecure_channel(grpc_address) as channel:
        yield GRPCInferenceServiceStub(channel)


def infer_code(stub, request: pb.ModelInferRequest) -> tuple[grpc.StatusCode, str]:
    try:
        stub.ModelInfer(request, timeout=30)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def test_every_malformed_request_is_invalid_argument(stub, champion_model) -> None:
    answers: list[tuple[grpc.StatusCode, str]] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(request=malformed_request())
    def refused(request: pb.ModelInferRequest) -> None:
        code, details = infer_code(stub, request)
        answers.append((code, details))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, request)
        assert details, request

    refused()
    assert len(answers) >= 500  # the corpus was large
    assert_answers_correctly(stub, champion_model)  # and the server is still correct after it


def texts_of_raw(raw: bytes) -> list[str]:
    """The texts of a raw BYTES tensor."""
    texts, at = [], 0
    while at < len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        texts.append(raw[at + 4 : at + 4 + size].decode())
        at += 4 + size
    return texts


def assert_answers_correctly(stub, champion_model) -> None:
    """Two texts sent as contents and as raw input get the champion's own labels and probabilities."""
    import pandas as pd

    from core.labels import probability_columns

    texts = ["I love the new phone!", "awful experience with my flight"]
    encoded = [t.encode() for t in texts]
    via_contents = pb.ModelInferRequest(
        model_name="sentiment",
        inputs=[Tensor(name="text", datatype="BYTES", shape=[2], contents=Contents(bytes_contents=encoded))],
    )
    via_raw = pb.ModelInferRequest(
        model_name="sentiment",
        inputs=[Tensor(name="text", datatype="BYTES", shape=[2])],
        raw_input_contents=[raw_bytes_tensor(encoded)],
    )
    expected = champion_model.predict(pd.DataFrame({"text": texts}))
    for request in (via_contents, via_raw):
        answer = stub.ModelInfer(request, timeout=30)
        assert texts_of_raw(answer.raw_output_contents[0]) == expected["label"].tolist()
        probabilities = np.frombuffer(answer.raw_output_contents[2], dtype=np.float32).reshape(2, 3)
        np.testing.assert_allclose(probabilities, expected[probability_columns()].to_numpy(), atol=1e-6)
    assert stub.ServerReady(pb.ServerReadyRequest()).ready


def test_raw_and_content_inputs_get_the_champions_answers(stub, champion_model) -> None:
    assert_answers_correctly(stub, champion_model)
