"""The extension's pure logic under node's built-in test runner, and its limits against the predictor's."""

import shutil
import subprocess

import pytest

from serving.payload import RequestLimits
from tests.extension.browser import EXTENSION, extension_limits


def test_the_extensions_node_unit_tests_pass() -> None:
    if not shutil.which("node"):
        pytest.fail("node is not installed: the extension's unit tests need Node.js 20 or newer")
    files = sorted(str(path.relative_to(EXTENSION)) for path in (EXTENSION / "test").glob("*.test.js"))
    assert files, "no extension unit tests found"
    # the TAP reporter by name (Node 23+ defaults to "spec" on a terminal) and the files by name (Node 21+
    # reads a folder argument as a glob)
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", *files], cwd=EXTENSION, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"# tests {result.stdout.count(chr(10) + 'ok ')}" in result.stdout  # every test ran ...
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout  # ... and passed


def test_no_request_the_extension_builds_is_too_big_for_the_predictor() -> None:
    limits, server = extension_limits(), RequestLimits()
    assert limits["maxChars"] == server.max_text_chars
    assert 1 <= limits["maxTexts"] <= server.max_instances
