"""Light text normalisation shared by training and serving, so the two never diverge."""

import html
import re

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_LITERAL_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SPACES = re.compile(r"\s+")
_MAX_DECODE_ROUNDS = 5


def _decode_escape(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return match.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)  # lone surrogates stay literal


def _decode(text: str) -> str:
    """Decode literal ``\\uXXXX`` escapes (TweetEval has thousands) and HTML entities, to a fixed point."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = html.unescape(_LITERAL_ESCAPE.sub(_decode_escape, text))
        if decoded == text:
            break
        text = decoded
    return text


def normalize_text(text: str) -> str:
    """Normalise one text: decode escapes and entities, replace URLs by ``http`` and user handles by
    ``@user`` (TweetEval's own anonymisation), and collapse whitespace. Idempotent.
    """
    text = _URL.sub("http", _decode(text))
    text = _HANDLE.sub("@user", text)
    return _SPACES.sub(" ", text).strip()
