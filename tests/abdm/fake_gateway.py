"""A real HTTP server playing the ABDM gateway (ABDM v3): it opens sessions for the bridge's
client id and secret, publishes its signing key as a JWKS, signs the JWTs it would put on its
calls to us, and records every on-share reply, answering each as a test scripts it."""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.abdm.gateway_jwt import b64url_encode

CLIENT_ID = "OPD_TEST_BRIDGE"
CLIENT_SECRET = "test-client-secret"
KEY_ID = "gateway-key-1"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(key: rsa.RSAPrivateKey, claims: dict[str, Any], *, kid: str = KEY_ID, alg: str = "RS256") -> str:
    header = b64url_encode(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    payload = b64url_encode(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64url_encode(signature)}"


class FakeGateway:
    def __init__(self) -> None:
        self.key = new_key()
        self.on_shares: list[Seen] = []      # every on-share attempt, with the status answered
        self.sessions = 0
        self._script: collections.deque[int] = collections.deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/api/hiecm/gateway/v3/certs":
                    self._reply(200, owner.jwks())
                else:
                    self._reply(404, {"error": "no such path"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.loads(raw) if raw else None
                if self.path == "/api/hiecm/gateway/v3/sessions":
                    ok = (body or {}).get("clientId") == CLIENT_ID and body.get("clientSecret") == CLIENT_SECRET \
                        and body.get("grantType") == "client_credentials" and headers.get("x-cm-id") == "sbx"
                    if not ok:
                        self._reply(401, {"error": {"code": "ABDM-1017", "message": "bad client"}})
                        return
                    with owner._lock:
                        owner.sessions += 1
                        token = f"gw-session-{owner.sessions}"
                    self._reply(200, {"accessToken": token, "expiresIn": 1200, "tokenType": "bearer"})
                elif self.path == "/api/hiecm/patient-share/v3/on-share":
                    authorised = headers.get("authorization", "").startswith("Bearer gw-session-")
                    with owner._lock:
                        status = owner._script.popleft() if owner._script else 202
                        status = status if authorised else 401
                        owner.on_shares.append(Seen(self.path, headers, body, status))
                        owner._arrived.notify_all()
                    self._reply(status)
                else:
                    self._reply(404, {"error": "no such path"})

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        length = (numbers.n.bit_length() + 7) // 8
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID,
                          "e": b64url_encode(numbers.e.to_bytes(3, "big")),
                          "n": b64url_encode(numbers.n.to_bytes(length, "big"))}]}

    def bearer(self, *, expires_in: float = 300, key: rsa.RSAPrivateKey | None = None, **header: Any) -> str:
        now = time.time()
        claims = {"clientId": "gateway", "iat": int(now), "exp": int(now + expires_in),
                  "iss": "https://dev.abdm.gov.in/gateway"}
        return "Bearer " + sign(key or self.key, claims, **header)

    def answer_next(self, *statuses: int) -> None:
        """The next on-share attempts get these statuses (then 202 again)."""
        with self._lock:
            self._script.extend(statuses)

    def wait_for_on_shares(self, request_id: str, count: int = 1, timeout: float = 20.0) -> list[Seen]:
        """The on-share attempts answering this share request, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [s for s in self.on_shares if (s.body or {}).get("response", {}).get("requestId") == request_id]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)} on-share(s) for {request_id} within {timeout:.0f} s, "
                                         f"expected {count}: {found}")
                self._arrived.wait(left)
