"""Answer ids that any replica can verify: an id carries what the feedback join needs (the model version,
the predicted label, its confidence, when it was answered, a digest of the text) and an HMAC-SHA256 of
those fields under a key every replica shares (env ``ANSWER_KEY``, on a cluster from a Kubernetes Secret;
``make serve`` keeps a generated one in ``.mlops/answer-key``). So feedback reaches the right version
whichever pod a load balancer sends it to, with no shared state, and an id that was forged or altered
is refused.

An id: ``<base64url fields>.<base64url first 16 bytes of the HMAC>``; the fields are
``version|label|confidence|unix ms|text digest|nonce``.
"""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_ENV, KEY_FILE_ENV = "ANSWER_KEY", "ANSWER_KEY_FILE"
SIGNATURE_BYTES = 16
TEXT_DIGEST_CHARS = 16


class ForgedId(ValueError):
    """An id that is malformed, or whose signature does not match its fields."""


@dataclass(frozen=True)
class SignedAnswer:
    """What an id says about its answer."""

    model_version: str
    predicted: str
    confidence: float
    time: float
    text_digest: str


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:TEXT_DIGEST_CHARS]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AnswerSigner:
    """Issues and verifies answer ids under one key."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("an answer key needs at least 16 bytes")
        self.key = key

    def _signature(self, fields: bytes) -> bytes:
        return hmac.new(self.key, fields, hashlib.sha256).digest()[:SIGNATURE_BYTES]

    def issue(self, text: str, predicted: str, confidence: float, model_version: str, time: float) -> str:
        fields = "|".join(
            (
                model_version,
                predicted,
                f"{confidence:.6f}",
                str(int(time * 1000)),
                text_digest(text),
                secrets.token_hex(4),
            )
        ).encode()
        return f"{_b64(fields)}.{_b64(self._signature(fields))}"

    def verify(self, answer_id: str) -> SignedAnswer:
        """The answer ``answer_id`` names; ForgedId when it is malformed or its signature does not match."""
        try:
            encoded, signature = answer_id.split(".")
            fields = _unb64(encoded)
            given = _unb64(signature)
        except (ValueError, TypeError):
            raise ForgedId("not an answer id of this service") from None
        if not hmac.compare_digest(given, self._signature(fields)):
            raise ForgedId("its signature does not match: forged, altered or signed with another key")
        version, predicted, confidence, millis, digest, _ = fields.decode().split("|")
        return SignedAnswer(version, predicted, float(confidence), int(millis) / 1000, digest)


def load_key(key_file: str | None = None) -> tuple[bytes, str]:
    """The shared key and where it came from: env ANSWER_KEY, else the file (``key_file`` or env
    ANSWER_KEY_FILE, created with a random key when missing), else a key of this process only."""
    if os.environ.get(KEY_ENV, "").strip():
        return os.environ[KEY_ENV].strip().encode(), f"env {KEY_ENV}"
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if path:
        file = Path(path)
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(secrets.token_hex(32))
            file.chmod(0o600)
        return file.read_text().strip().encode(), str(file)
    return secrets.token_bytes(32), "generated for this process (answer ids verify on this replica only)"
