"""A bearer token on the routes that change the server's state: the repository's load and unload calls
(``POST /v2/repository/models/<name>/load|unload``) and live labels (``POST /v1/models/<name>:feedback``).
With a token configured (env ``ADMIN_TOKEN``; on a cluster from a Kubernetes Secret), a caller without
``Authorization: Bearer <token>`` gets 401 and one with another token 403, each with a message; without
one the routes are open, as on a laptop. Inference, metadata, health and metrics stay open."""

import hmac
import re

from serving.http_guard import reject

STATE_CHANGING = re.compile(r"^(/v2/repository/models/[^/]+/(load|unload)|/v1/models/[^/]+:feedback)$")
TOKEN_ENV = "ADMIN_TOKEN"


def changes_state(method: str, path: str) -> bool:
    return method == "POST" and bool(STATE_CHANGING.match(path))


def refusal(authorization: str | None, token: str) -> tuple[int, str] | None:
    """(status, message) for a caller who may not change state, or None for one who may. Surrounding
    whitespace counts on neither side (a Secret made from a file often ends with a newline)."""
    if not authorization:
        return 401, "this route changes the server's state: send Authorization: Bearer <token>"
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.strip().encode()):
        return 403, "the bearer token is not the one this server was given"
    return None


class TokenGuard:
    """ASGI middleware: the token check on the state-changing routes; all other routes pass untouched."""

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not changes_state(scope.get("method", ""), scope.get("path", "")):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        refused = refusal(authorization, self.token)
        if refused is None:
            return await self.app(scope, receive, send)
        status, message = refused
        challenge = ((b"www-authenticate", b"Bearer"),) if status == 401 else ()
        await reject(send, status, message, challenge)
