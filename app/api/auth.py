"""HTTP's side of identity: 401 without a credential, 403 for a display outside the boards or a
session's unsafe request without its CSRF token. Who the caller is: app/security/identity.py."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from app.errors import ApiError
from app.security.identity import (  # noqa: F401  (re-exported for the API's modules)
    KEY_PREFIX,
    ROLES,
    Principal,
    create_api_key,
    hash_key,
    optional_principal,
    principal_from_api_key,
)
from app.security.sessions import CSRF_HEADER, SessionSigner

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def authenticate(conn: HTTPConnection, *, allow_display: bool = False) -> Principal:
    """The staff caller of an HTTP request or WebSocket upgrade, or 401/403."""
    principal = await optional_principal(conn)
    if principal is None:
        raise ApiError(401, "sign in, or send an API key as 'Authorization: Bearer <key>'",
                       code="unauthenticated")
    if principal.role == "display" and not allow_display:
        raise ApiError(403, "a display can only show boards", code="forbidden")
    method = conn.scope.get("method")
    if principal.via == "session" and method is not None and method not in SAFE_METHODS:
        signer: SessionSigner = conn.app.state.signer
        if not signer.csrf_ok(principal.session_nonce, conn.headers.get(CSRF_HEADER)):
            raise ApiError(403, "missing or wrong CSRF token; reload the page", code="csrf")
    return principal

