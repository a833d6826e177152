"""A test that needs ../shared skips on a user's fresh clone and fails in CI (REQUIRE_SHARED_DATA=1)."""

from pathlib import Path

import pytest

from tests.helpers import REQUIRE_SHARED, shared_absent


@pytest.mark.parametrize(
    ("required", "outcome"), [("1", pytest.fail.Exception), (None, pytest.skip.Exception)]
)
def test_absent_shared_data_fails_in_ci_and_skips_elsewhere(monkeypatch, required, outcome) -> None:
    if required:
        monkeypatch.setenv(REQUIRE_SHARED, required)
    else:
        monkeypatch.delenv(REQUIRE_SHARED, raising=False)
    with pytest.raises(outcome, match="nowhere is absent"):
        shared_absent(Path("nowhere"), "a test fixture")
