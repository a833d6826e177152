"""The bearer token on the state-changing routes, on the real model server: 401 without it, 403 with
another, the route's own answer with it; inference, metadata, health and metrics stay open."""

import pytest

from serving.auth import changes_state, refusal
from tests.conftest import ADMIN_TOKEN
from tests.helpers import HTTP

TOKEN = ADMIN_TOKEN


@pytest.fixture
def guarded_server(fast_model_server: str) -> str:
    """The session's TF-IDF predictor: it runs with ADMIN_TOKEN set."""
    return fast_model_server


@pytest.mark.parametrize(
    ("method", "path", "guarded"),
    [
        ("POST", "/v2/repository/models/sentiment/load", True),
        ("POST", "/v2/repository/models/sentiment/unload", True),
        ("POST", "/v1/models/sentiment:feedback", True),
        ("GET", "/v2/repository/models/sentiment/load", False),
        ("POST", "/v1/models/sentiment:predict", False),
        ("POST", "/v2/models/sentiment/infer", False),
        ("POST", "/v2/repository/index", False),
    ],
)
def test_which_routes_change_state(method, path, guarded) -> None:
    assert changes_state(method, path) is guarded


def test_refusals() -> None:
    assert refusal(None, TOKEN)[0] == 401
    assert refusal(f"Bearer {TOKEN}x", TOKEN)[0] == 403
    assert refusal(f"Basic {TOKEN}", TOKEN)[0] == 403
    assert refusal(f"Bearer {TOKEN}", TOKEN) is None
    assert refusal(f"bearer  {TOKEN} ", TOKEN) is None
    # a token from a Secret made with --from-file of `openssl rand ... > file` ends with a newline
    assert refusal(f"Bearer {TOKEN}", f"{TOKEN}\n") is None


ROUTES = [
    ("/v1/models/sentiment:feedback", [{"text": "never answered", "label": "positive"}]),
    ("/v2/repository/models/sentiment/load", None),
]


@pytest.mark.parametrize(("path", "body"), ROUTES)
def test_state_changing_routes_need_the_token(guarded_server, path, body) -> None:
    url = guarded_server
    missing = HTTP.post(f"{url}{path}", json=body, timeout=60)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = HTTP.post(f"{url}{path}", json=body, headers={"Authorization": "Bearer nope"}, timeout=60)
    assert wrong.status_code == 403 and "not the one" in wrong.json()["error"]
    right = HTTP.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    # With the token the route answers for itself: the load succeeds; the feedback names an unknown text.
    assert right.status_code == (400 if "feedback" in path else 200), right.text


def test_inference_and_reads_stay_open(guarded_server) -> None:
    url = guarded_server
    assert HTTP.post(f"{url}/v1/models/sentiment:predict", json={"instances": ["hi"]}).status_code == 200
    assert HTTP.get(f"{url}/v2/models/sentiment").status_code == 200
    assert HTTP.get(f"{url}/v2/health/ready").status_code == 200
    assert HTTP.get(f"{url}/metrics").status_code == 200
