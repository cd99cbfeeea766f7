"""Vertex AI's wire format for the fake upstream, and a fake Google OAuth token endpoint.

The token endpoint (``POST {fake}/token``) does what Google's does for a service account: it
reads the JWT-bearer assertion, verifies its RS256 signature with the public key registered
for the issuing account (:func:`service_account` registers one) and its audience, and answers
``{"access_token", "expires_in": 3600, "token_type": "Bearer"}``. Vertex routes then accept
only tokens it issued (401 ``UNAUTHENTICATED`` otherwise, as Google answers).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes import wire_gemini

_lock = threading.Lock()
_public_keys: dict[str, rsa.RSAPublicKey] = {}
_issued: set[str] = set()
_key: rsa.RSAPrivateKey | None = None


def _private_key() -> rsa.RSAPrivateKey:
    global _key
    with _lock:
        if _key is None:  # one key per test process: generating RSA keys is slow
            _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _key


def service_account(token_uri: str, email: str = "gw@test-project.iam.gserviceaccount.com") -> str:
    """A service-account JSON whose tokens the fake endpoint at ``token_uri`` will mint."""
    key = _private_key()
    with _lock:
        _public_keys[email] = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    }
    return json.dumps(info)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def token_answer(form: bytes, url: str) -> tuple[int, dict[str, Any]]:
    """The token endpoint's answer to a form-encoded JWT-bearer grant posted to ``url``."""
    fields = {k: v[0] for k, v in parse_qs(form.decode()).items()}
    if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return 400, {"error": "unsupported_grant_type"}
    try:
        head, payload, signature = fields.get("assertion", "").split(".")
        claims = json.loads(_b64(payload))
        public = _public_keys[claims["iss"]]
        public.verify(
            _b64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (ValueError, KeyError, InvalidSignature):
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    # google-auth always names Google's token endpoint as the audience, wherever it posts.
    audiences = {url, "https://oauth2.googleapis.com/token"}
    if claims.get("aud") not in audiences or claims.get("exp", 0) < time.time():
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT audience."}
    token = "ya29.fake-" + secrets.token_urlsafe(16)
    with _lock:
        _issued.add(token)
    return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


def token_valid(headers: dict[str, str]) -> bool:
    """Whether the request carries a bearer token the fake endpoint issued."""
    auth = headers.get("authorization", "")
    with _lock:
        return auth.startswith("Bearer ") and auth[7:] in _issued


def unauthenticated() -> dict[str, Any]:
    message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
    return {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}


def anthropic_problem(body: dict[str, Any]) -> str | None:
    """What Vertex refuses in a rawPredict body before Anthropic's own rules apply."""
    if "model" in body:
        return "model: Extra inputs are not permitted"
    if body.get("anthropic_version") != "vertex-2023-10-16":
        return "anthropic_version: Field required"
    return None


def not_found(model: str) -> dict[str, Any]:
    message = f"Publisher Model `{model}` was not found or your project does not have access."
    return wire_gemini.error(404, message)


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """``:predict`` of a text-embedding model: one vector per instance, with its tokens."""
    predictions = []
    for instance in body.get("instances") or []:
        text = str(instance.get("content") or "")
        values = [round(0.001 * (len(text) + i), 6) for i in range(8)]
        stats = {"token_count": len(text.split()), "truncated": False}
        predictions.append({"embeddings": {"values": values, "statistics": stats}})
    return {"predictions": predictions}
