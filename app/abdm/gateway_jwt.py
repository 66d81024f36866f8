"""The ABDM gateway's signature on the calls it makes to us: a bearer JWT signed RS256 with a key
the gateway publishes at /api/hiecm/gateway/v3/certs (a JSON Web Key Set, RFC 7517). Verified
here with `cryptography` directly: only RS256 is accepted (never `none` or an HMAC algorithm a
forger could pick), the key is chosen by `kid`, and `exp` is required."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLOCK_SKEW_S = 60  # between the gateway's clock and ours


class GatewayTokenRefused(ValueError):
    """The bearer token is not the gateway's, or no longer valid; the message says why."""


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_keys(jwks: dict[str, Any]) -> dict[str, rsa.RSAPublicKey]:
    """kid -> key, for the RSA signing keys of a JWKS (others are skipped)."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        try:
            numbers = rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(jwk["e"]), "big"),
                                           int.from_bytes(b64url_decode(jwk["n"]), "big"))
        except (KeyError, ValueError, TypeError):
            continue
        keys[str(jwk.get("kid", ""))] = numbers.public_key()
    return keys


def token_key_id(token: str) -> str:
    """The `kid` of a token's header ('' when it has none), before its signature is checked."""
    return str(_header(token).get("kid", ""))


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise GatewayTokenRefused("not a JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise GatewayTokenRefused("the JWT header is not JSON") from None
    if not isinstance(header, dict):
        raise GatewayTokenRefused("the JWT header is not an object")
    return header


def verify(token: str, keys: dict[str, rsa.RSAPublicKey], now: float) -> dict[str, Any]:
    """The token's claims once its signature and times check out; GatewayTokenRefused if not."""
    header = _header(token)
    if header.get("alg") != "RS256":
        raise GatewayTokenRefused(f"algorithm {header.get('alg')!r} is not accepted (RS256 only)")
    kid = str(header.get("kid", ""))
    key = keys.get(kid) or (next(iter(keys.values())) if len(keys) == 1 and not kid else None)
    if key is None:
        raise GatewayTokenRefused(f"no published gateway key has id {kid!r}")
    head, payload, signature = token.split(".")
    try:
        key.verify(b64url_decode(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise GatewayTokenRefused("the signature does not verify") from None
    try:
        claims = json.loads(b64url_decode(payload))
    except ValueError:
        raise GatewayTokenRefused("the JWT claims are not JSON") from None
    if not isinstance(claims, dict):
        raise GatewayTokenRefused("the JWT claims are not an object")
    expires = claims.get("exp")
    if not isinstance(expires, int | float):
        raise GatewayTokenRefused("the JWT has no expiry")
    if now > expires + CLOCK_SKEW_S:
        raise GatewayTokenRefused("the JWT has expired")
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and now < not_before - CLOCK_SKEW_S:
        raise GatewayTokenRefused("the JWT is not valid yet")
    return claims
