"""A generated corpus of malformed requests (hypothesis, fixed seed) against the real model server: over
1,000 v1 and v2 requests, each answered with a 4xx and an error message, never a 5xx; the server stays
healthy and keeps answering valid requests afterwards."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SERVER_LIMITS
from tests.helpers import HTTP, scrape_metrics

V1 = "/v1/models/sentiment:predict"
V2 = "/v2/models/sentiment/infer"
EXAMPLES = {"v1": 450, "v2": 450, "raw": 150}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
good_texts = st.lists(st.text(min_size=1, max_size=40).filter(str.strip), max_size=3)
too_long = st.text(
    min_size=SERVER_LIMITS["max_text_chars"] + 1, max_size=SERVER_LIMITS["max_text_chars"] + 50
)
bad_texts = (
    scalars.filter(lambda v: not isinstance(v, str))
    | st.text(alphabet=" \t\n", max_size=5)  # empty or blank
    | too_long
    | st.lists(json_values, max_size=3)
    | st.dictionaries(st.text(max_size=6).filter(lambda k: k != "text"), json_values, max_size=3)
    | st.builds(lambda v: {"text": v}, scalars.filter(lambda v: not isinstance(v, str)))
)
with_one_bad = st.tuples(good_texts, bad_texts, good_texts).map(lambda t: [*t[0], t[1], *t[2]])
too_many = st.lists(st.just("fine"), min_size=SERVER_LIMITS["max_instances"] + 1, max_size=40)

malformed_v1 = st.one_of(
    json_values.filter(lambda v: not (isinstance(v, dict) and "instances" in v)),
    st.builds(lambda v: {"instances": v}, json_values.filter(lambda v: not isinstance(v, list) or not v)),
    st.builds(lambda v: {"instances": v}, with_one_bad | too_many),
)


def tensor(name="text", datatype="BYTES", shape=None, data=None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def valid_shapes(texts: list) -> list[list[int]]:
    return [[len(texts)], [len(texts), 1]]


malformed_v2 = st.one_of(
    json_values.filter(lambda v: not (isinstance(v, dict) and "inputs" in v)),
    st.builds(lambda v: {"inputs": v}, json_values.filter(lambda v: not isinstance(v, list) or len(v) != 1)),
    # wrong datatype, with data of matching length
    st.builds(
        lambda datatype, data: {"inputs": [tensor(datatype=datatype, shape=[len(data)], data=data)]},
        st.sampled_from(["FP32", "INT64", "BOOL", "UINT8", "FP16", "bytes", ""]),
        st.lists(st.integers(0, 255), min_size=1, max_size=4),
    ),
    # a shape other than [n] or [n, 1] for n texts
    st.builds(
        lambda shape, data: {"inputs": [tensor(shape=shape, data=data)]},
        st.lists(st.integers(-3, 6), max_size=3),
        good_texts,
    ).filter(lambda body: body["inputs"][0]["shape"] not in valid_shapes(body["inputs"][0]["data"])),
    # a well-formed tensor holding one bad text, or too many texts
    st.builds(lambda data: {"inputs": [tensor(shape=[len(data)], data=data)]}, with_one_bad | too_many),
    # a tensor missing fields or with fields of the wrong type
    st.builds(
        lambda fields: {"inputs": [fields]},
        st.fixed_dictionaries(
            {},
            optional={
                "name": json_values,
                "datatype": json_values,
                "shape": json_values,
                "data": json_values,
            },
        ),
    ),
)

raw_bodies = st.one_of(
    st.tuples(
        st.binary(max_size=200).filter(lambda b: not _is_json(b)),
        st.sampled_from(["application/json", ""]),
    ),
    st.tuples(
        st.just(b'{"instances": ["fine"]}'),
        st.sampled_from(["text/plain", "application/xml", "multipart/form-data", "image/png"]),
    ),
)


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same corpus on every run: CI failures reproduce
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def assert_client_error(response: httpx.Response, request: object) -> None:
    assert 400 <= response.status_code < 500, f"{request!r} -> {response.status_code} {response.text}"
    assert response.json()["error"], f"{request!r} -> no error message"


@pytest.mark.parametrize(("protocol", "path", "bodies"), [("v1", V1, malformed_v1), ("v2", V2, malformed_v2)])
def test_malformed_json_requests_get_4xx_never_5xx(model_server, protocol, path, bodies) -> None:
    url, _ = model_server
    sent = []
    with httpx.Client(base_url=url, timeout=30) as client:

        @fuzz_settings(EXAMPLES[protocol])
        @given(body=bodies)
        def send(body) -> None:
            sent.append(body)
            assert_client_error(client.post(path, json=body), body)

        send()
    assert len(sent) >= EXAMPLES[protocol]
    assert_still_serving(url)


def test_unparseable_and_wrongly_typed_bodies_get_4xx_never_5xx(model_server) -> None:
    url, _ = model_server
    sent = []
    with httpx.Client(base_url=url, timeout=30) as client:

        @fuzz_settings(EXAMPLES["raw"])
        @given(request=raw_bodies, path=st.sampled_from([V1, V2]))
        def send(request, path) -> None:
            content, content_type = request
            sent.append(content)
            response = client.post(path, content=content, headers={"content-type": content_type})
            assert_client_error(response, (path, request))

        send()
    assert len(sent) >= EXAMPLES["raw"]
    assert_still_serving(url)


def assert_still_serving(url: str) -> None:
    """Healthy, answering a valid request, and no 5xx in its request counter."""
    assert HTTP.get(f"{url}/v2/health/ready").status_code == 200
    answer = HTTP.post(f"{url}{V1}", json={"instances": ["I love the new phone!"]})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "positive"
    server_errors = {
        labels: value
        for (name, labels), value in scrape_metrics(url).items()
        if name == "sentiment_requests_total" and dict(labels)["code"].startswith("5") and value > 0
    }
    assert not server_errors  # the 5xx series exist from the start (at 0), none has moved
