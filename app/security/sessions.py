"""Browser credentials: signed staff session cookies, CSRF tokens, and display-device cookies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "opd_session"
DISPLAY_COOKIE = "opd_display"
SESSION_MAX_AGE_S = 12 * 3600          # one working day and some; then sign in again
DISPLAY_MAX_AGE_S = 400 * 24 * 3600    # a paired TV stays paired until revoked (browsers cap ~400 d)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class SessionSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="opd-session")

    def issue(self, user_id: str) -> str:
        return self._serializer.dumps({"u": user_id, "n": secrets.token_urlsafe(16), "t": time.time()})

    def read(self, value: str | None) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and {"u", "n", "t"} <= data.keys() else None

    def csrf_token(self, nonce: str) -> str:
        """Bound to the session: a token from another session (or none) is refused."""
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(nonce), token or "")


def hash_credential(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


def cookie_options(secure: bool, max_age: int) -> dict[str, Any]:
    return {"max_age": max_age, "httponly": True, "samesite": "lax", "secure": secure, "path": "/"}
