"""Jinja2 templates, with static URLs that change when the file does (safe long caching)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from app.security.identity import Principal
from app.settings import REPO_ROOT

STATIC_DIR = REPO_ROOT / "static"
templates = Jinja2Templates(directory=str(REPO_ROOT / "templates"))


@lru_cache(maxsize=256)
def static_url(path: str) -> str:
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:10]
    return f"/static/{path}?v={digest}"


templates.env.globals["static_url"] = static_url


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           principal: Principal | None = None, status_code: int = 200) -> Any:
    signer = request.app.state.signer
    csrf = signer.csrf_token(principal.session_nonce) if principal and principal.via == "session" else ""
    return templates.TemplateResponse(request, name, {
        "principal": principal, "csrf_token": csrf, **(context or {})}, status_code=status_code)
