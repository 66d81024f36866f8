"""Sign-in and sign-out for staff (docs/security.md: lock-out, rate limits, audit)."""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.security.identity import optional_principal
from app.security.passwords import verify_password
from app.security.sessions import SESSION_COOKIE, SESSION_MAX_AGE_S, cookie_options
from app.web.templating import render

LOGIN_CSRF_COOKIE = "opd_login_csrf"
FAILURES_BEFORE_LOCKOUT = 5          # wrong passwords in a row lock the account ...
LOCKOUT_MINUTES = 15                 # ... for this long
LOGIN_WINDOW_S = 300  # sign-in attempts are counted per client address over 5 minutes
HOME_BY_ROLE = {"admin": "/admin", "receptionist": "/reception", "doctor": "/doctor"}

log = logging.getLogger(__name__)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request) -> Response:
    if request.method == "POST":
        return await _login(request)
    return _form(request)


def _form(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"error": error, "login_csrf": token,
                                              "next": request.query_params.get("next", "")},
                      status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, **cookie_options(request.url.scheme == "https", 3600))
    return response


async def _login(request: Request) -> Response:
    form = await request.form()
    # NUL cannot be stored or looked up; such a name matches nobody (the normal refusal below).
    username = str(form.get("username", "")).strip()[:64].replace("\x00", "\ufffd")
    password = str(form.get("password", ""))[:200]
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(cookie_token, str(form.get("login_csrf", ""))):
        return _form(request, "Your sign-in form expired. Please try again.", 403)
    address = client_address(request)
    if not request.app.state.login_limiter.allow(address):
        return _form(request, "Too many sign-in attempts from this device. Wait a few minutes.", 429)
    pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(
            """SELECT user_id, password_hash, role, is_active, locked_until > now() AS locked
               FROM staff_users WHERE username = $1 FOR UPDATE""", username)
        ok = verify_password(user["password_hash"] if user else None, password)
        detail = None
        if user is None:
            detail = "unknown user"
        elif user["locked"]:
            ok, detail = False, "locked"
        elif not user["is_active"]:
            ok, detail = False, "inactive"
        elif not ok:
            detail = "wrong password"
            await conn.execute(
                """UPDATE staff_users SET failed_logins = failed_logins + 1,
                       locked_until = CASE WHEN failed_logins + 1 >= $2
                                           THEN now() + make_interval(mins => $3) END
                   WHERE user_id = $1""", user["user_id"], FAILURES_BEFORE_LOCKOUT, LOCKOUT_MINUTES)
        else:
            await conn.execute("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE user_id = $1",
                               user["user_id"])
        await conn.execute(
            "INSERT INTO login_events (username, user_id, remote_addr, succeeded, detail) VALUES ($1, $2, $3, $4, $5)",
            username, user["user_id"] if user else None, address, ok, detail)
    if not ok:
        # For whoever watches the logs: who tried, from where, and why it failed (never the password).
        log.warning("sign-in refused for %r from %s: %s", username, address, detail)
        message = ("This account is locked after repeated failures. Try again in "
                   f"{LOCKOUT_MINUTES} minutes or ask an admin." if detail == "locked"
                   else "Wrong username or password.")
        return _form(request, message, 401)
    assert user is not None
    target = str(form.get("next", "")) or HOME_BY_ROLE[user["role"]]
    if not target.startswith("/") or target.startswith("//"):
        target = HOME_BY_ROLE[user["role"]]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, request.app.state.signer.issue(str(user["user_id"])),
                        **cookie_options(request.url.scheme == "https", SESSION_MAX_AGE_S))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    """POST /logout (with ?everywhere=1 to end every session of this user)."""
    principal = await optional_principal(request)
    form = await request.form()
    if principal is not None and principal.via == "session":
        if not request.app.state.signer.csrf_ok(principal.session_nonce, str(form.get("csrf_token", ""))):
            return Response("missing or wrong CSRF token", status_code=403)
        if request.query_params.get("everywhere") or form.get("everywhere"):
            await request.app.state.pool.execute(
                "UPDATE staff_users SET sessions_valid_after = now() WHERE user_id = $1", principal.actor_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

