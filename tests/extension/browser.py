"""Real Chromium with the unpacked extension, and an HTTPS site that answers as www.youtube.com.

Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by selenium) maps www.youtube.com to the
fixture site on loopback (``--host-resolver-rules``) and accepts its self-signed certificate, so the
manifest's real match pattern is what injects the content script."""

import datetime
import http.server
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.helpers import REPO, free_port

EXTENSION = REPO / "extension"
# Whatever chromium and chromedriver are on PATH (.ci/run installs Debian's); CHROMIUM and CHROMEDRIVER
# name others.
CHROMIUM = Path(os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver")
HOST = "www.youtube.com"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for HOST, valid for a day; returns (certificate, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "site.crt", folder / "site.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class FixtureSite:
    """An HTTPS server on 127.0.0.1 serving ``pages[video_id]`` at /watch?v=<video_id>."""

    def __init__(self, folder: Path) -> None:
        self.pages: dict[str, str] = {}
        self.port = free_port()
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                page = pages.get(parse_qs(url.query).get("v", [""])[0]) if url.path == "/watch" else None
                body = (page or "not a fixture page").encode()
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self_signed_certificate(folder))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_chromium(site_port: int, profile: Path) -> webdriver.Chrome:
    """Headless Chromium with the unpacked extension, www.youtube.com mapped to ``site_port``."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",  # this machine's closed network refuses Chromium's own calls
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1100,1400",
        f"--host-resolver-rules=MAP {HOST}:443 127.0.0.1:{site_port}",
        "--ignore-certificate-errors",
        f"--load-extension={EXTENSION}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll ``condition`` until it returns something truthy (returned), or fail saying ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def extension_id(driver: webdriver.Chrome) -> str:
    """The loaded extension's id, read from its service worker's target."""

    def worker_url() -> str | None:
        targets = driver.execute_cdp_cmd("Target.getTargets", {})["targetInfos"]
        urls = [t["url"] for t in targets if t["type"] == "service_worker"]
        return next((u for u in urls if u.startswith("chrome-extension://")), None)

    return urlparse(wait_until(worker_url, 20, "the extension's service worker")).netloc


def configure(driver: webdriver.Chrome, extension: str, **values: str) -> str:
    """Fill and save the options page with ``values`` (predictorUrl, modelName, protocol, token), as a user
    does; return the status line it shows after saving."""
    driver.get(f"chrome-extension://{extension}/options.html")
    wait_until(
        lambda: driver.execute_script("return document.getElementById('modelName').value"), 10, "options"
    )
    driver.execute_script(
        "for (const [field, value] of Object.entries(arguments[0]))"
        "  document.getElementById(field).value = value;",
        values,
    )
    driver.find_element("id", "save").click()
    return wait_until(
        lambda: driver.execute_script("return document.getElementById('status').textContent"),
        20,
        "the options page's status after saving",
    )


COMMENT_STATE = """
return [...document.querySelectorAll("[data-fixture-id]")].map((comment) => {
  const badge = comment.querySelector(".sentiment-lens-badge");
  return [comment.dataset.fixtureId, badge ? badge.dataset.sentimentLabel : null];
});
"""


def badges(driver: webdriver.Chrome) -> dict[str, str | None]:
    """Each fixture comment's badge label (None while it has none), by comment id."""
    return dict(driver.execute_script(COMMENT_STATE))


def panel_state(driver: webdriver.Chrome) -> dict | None:
    """The panel's counts and notice line, or None while there is no panel."""
    return driver.execute_script(
        """
        const panel = document.getElementById("sentiment-lens-panel");
        if (!panel) return null;
        const notice = panel.querySelector(".sentiment-lens-notice");
        return {counts: JSON.parse(panel.dataset.counts), notice: notice.hidden ? "" : notice.textContent};
        """
    )


def extension_limits() -> dict:
    """The extension's client-side limits (extension/src/settings.js LIMITS), read by node."""
    script = "console.log(JSON.stringify(require('./src/settings.js').LIMITS))"
    result = subprocess.run(["node", "-e", script], cwd=EXTENSION, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)
