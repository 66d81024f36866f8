"""The ABDM gateway, as this hospital system talks to it (ABDM v3; docs/abdm.md):

- a session: POST /api/hiecm/gateway/v3/sessions with the bridge's client id and secret gives an
  access token for about 20 minutes; kept and renewed a minute before it ends;
- the gateway's signing keys: GET /api/hiecm/gateway/v3/certs, kept for an hour and fetched
  again at once (at most every 30 s) when a token names a key we do not have (a key rotation);
- the on-share reply: POST /api/hiecm/patient-share/v3/on-share (202 expected);
- the bridge URL (where the gateway calls us): PATCH /api/hiecm/gateway/v3/bridge/url.

Every request carries REQUEST-ID, TIMESTAMP and X-CM-ID as the gateway requires.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from app.abdm import gateway_jwt
from app.settings import Settings

SESSION_PATH = "/api/hiecm/gateway/v3/sessions"
CERTS_PATH = "/api/hiecm/gateway/v3/certs"
ON_SHARE_PATH = "/api/hiecm/patient-share/v3/on-share"
BRIDGE_URL_PATH = "/api/hiecm/gateway/v3/bridge/url"
SESSION_MARGIN_S = 60    # renew the access token this long before it ends
CERTS_TTL_S = 3600       # the published keys are fetched again this often ...
CERTS_REFETCH_S = 30     # ... and at most this often for a key id we do not know
TIMEOUT_S = 10.0


class GatewayError(RuntimeError):
    """The gateway did not answer as expected (the caller retries later)."""


def timestamp() -> str:
    """TIMESTAMP as the gateway writes it: UTC, milliseconds, Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AbdmConfigError(ValueError):
    pass


def gateway_from_settings(settings: Settings) -> Gateway | None:
    """The gateway when Scan & Share is set up (OPD_ABDM_GATEWAY_URL), else None; a half-made
    configuration stops start-up with what is missing."""
    if not settings.abdm_gateway_url:
        return None
    missing = [name for name, value in (("OPD_ABDM_CLIENT_ID", settings.abdm_client_id),
                                        ("OPD_ABDM_CLIENT_SECRET", settings.abdm_client_secret)) if not value]
    if missing:
        raise AbdmConfigError(f"OPD_ABDM_GATEWAY_URL is set but {' and '.join(missing)} not")
    if not settings.abdm_gateway_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise AbdmConfigError("OPD_ABDM_GATEWAY_URL must be https (http only for a local test gateway)")
    return Gateway(settings)


class Gateway:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base = (settings.abdm_gateway_url or "").rstrip("/")
        self._client_id = settings.abdm_client_id or ""
        self._client_secret = str(settings.abdm_client_secret or "")
        self._cm_id = settings.abdm_cm_id
        self._http = httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport)
        self._token: tuple[str, float] | None = None       # (access token, when to renew)
        self._keys: dict[str, Any] = {}
        self._keys_at: float = -CERTS_TTL_S
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    def _headers(self, request_id: str | None = None) -> dict[str, str]:
        return {"REQUEST-ID": request_id or str(uuid.uuid4()), "TIMESTAMP": timestamp(),
                "X-CM-ID": self._cm_id, "Content-Type": "application/json"}

    # Our calls -------------------------------------------------------------------------------
    async def access_token(self) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            try:
                response = await self._http.post(
                    self._base + SESSION_PATH, headers=self._headers(),
                    json={"clientId": self._client_id, "clientSecret": self._client_secret,
                          "grantType": "client_credentials"})
            except httpx.HTTPError as exc:
                raise GatewayError(f"session: {exc.__class__.__name__}") from exc
            if response.status_code != 200:
                raise GatewayError(f"session: HTTP {response.status_code} {response.text[:200]}")
            body = response.json()
            token = body.get("accessToken")
            if not isinstance(token, str) or not token:
                raise GatewayError("session: no accessToken in the answer")
            lifetime = float(body.get("expiresIn") or 1200)
            self._token = (token, time.monotonic() + max(lifetime - SESSION_MARGIN_S, 5.0))
            return token

    def forget_session(self) -> None:
        """The gateway refused our token (401): take a new one next time."""
        self._token = None

    async def send_on_share(self, body: dict[str, Any], request_id: str) -> int:
        """POST the on-share; returns the HTTP status. The same REQUEST-ID on every attempt."""
        token = await self.access_token()
        headers = {**self._headers(request_id), "Authorization": f"Bearer {token}"}
        try:
            response = await self._http.post(self._base + ON_SHARE_PATH, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise GatewayError(f"on-share: {exc.__class__.__name__}") from exc
        if response.status_code == 401:
            self.forget_session()
        return response.status_code

    async def register_bridge(self, url: str) -> int:
        token = await self.access_token()
        response = await self._http.patch(self._base + BRIDGE_URL_PATH, json={"url": url},
                                          headers={**self._headers(), "Authorization": f"Bearer {token}"})
        return response.status_code

    # Their calls -------------------------------------------------------------------------------
    async def verify_caller(self, authorization: str | None) -> dict[str, Any]:
        """The claims of the gateway's bearer token; GatewayTokenRefused when it is not one."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise gateway_jwt.GatewayTokenRefused("no bearer token")
        token = authorization[7:].strip()
        kid = gateway_jwt.token_key_id(token)
        now = time.monotonic()
        stale = now - self._keys_at > CERTS_TTL_S
        unknown = kid not in self._keys and now - self._keys_at > CERTS_REFETCH_S
        if stale or unknown:
            await self._fetch_keys()
        return gateway_jwt.verify(token, self._keys, time.time())

    async def _fetch_keys(self) -> None:
        try:
            response = await self._http.get(self._base + CERTS_PATH, headers=self._headers())
            response.raise_for_status()
            keys = gateway_jwt.public_keys(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            if not self._keys:
                raise GatewayError(f"certs: {exc.__class__.__name__}") from exc
            # Keep the keys we have; look again in CERTS_REFETCH_S, not at every call.
            self._keys_at = time.monotonic() - CERTS_TTL_S + CERTS_REFETCH_S
            return
        self._keys, self._keys_at = keys, time.monotonic()
