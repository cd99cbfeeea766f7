"""Vertex AI's OAuth access tokens, minted from a key credential's service-account JSON.

A Vertex key credential's ``api_key`` holds the whole service-account JSON (encrypted at rest
like every key). Tokens are minted with ``google-auth`` (whose refresh is blocking, so it runs
in a worker thread, never on the event loop) and cached per key until shortly before they
expire; an asyncio lock per key makes concurrent requests wait for one refresh instead of
each minting its own.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from providers.adapters.base import CredentialError
from providers.validators import service_account_problem

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: A cached token is renewed this many seconds before Google says it expires.
REFRESH_MARGIN = 300.0


class TokenError(CredentialError):
    """No access token could be minted (bad key, refused by the token endpoint)."""


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float  # time.time() seconds


def _mint(info: dict[str, Any]) -> _Token:
    """Blocking: sign a JWT with the account's key and exchange it at its token URI."""
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    try:
        creds = service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
        creds.refresh(Request())
    except (GoogleAuthError, ValueError, KeyError, TypeError) as exc:
        # The exception text can quote the token endpoint's answer, never the key itself.
        raise TokenError(f"service account token refused: {type(exc).__name__}") from exc
    expiry = creds.expiry  # naive UTC
    expires_at = calendar.timegm(expiry.utctimetuple()) if expiry else time.time() + 3600
    return _Token(str(creds.token), float(expires_at))


class TokenCache:
    """Access tokens per service-account JSON, one refresh at a time per account."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        self.refreshes = 0  # how many tokens were minted (tests and metrics read it)

    def clear(self) -> None:
        self._tokens.clear()
        self._locks.clear()

    async def token(self, service_account_json: str) -> str:
        """A valid access token for the account (minting one if none is cached or it is
        within :data:`REFRESH_MARGIN` of its expiry); raises :class:`TokenError`."""
        # Keyed by a digest: the cache holds no copy of the private key as a dict key.
        ident = hashlib.sha256(service_account_json.encode()).hexdigest()
        cached = self._tokens.get(ident)
        if cached and cached.expires_at - REFRESH_MARGIN > time.time():
            return cached.value
        # An asyncio lock belongs to one event loop; sync callers (health probes, commands)
        # run a loop of their own, so a lock from another loop is replaced, not reused.
        loop = asyncio.get_running_loop()
        held = self._locks.get(ident)
        if held is None or held[0] is not loop:
            held = (loop, asyncio.Lock())
            self._locks[ident] = held
        lock = held[1]
        async with lock:
            cached = self._tokens.get(ident)
            if cached and cached.expires_at - REFRESH_MARGIN > time.time():
                return cached.value
            if service_account_problem(service_account_json):
                raise TokenError("the key's service-account JSON is not usable")
            info = orjson.loads(service_account_json)
            fresh = await asyncio.to_thread(_mint, info)
            self.refreshes += 1
            self._tokens[ident] = fresh
            return fresh.value


#: The process's cache (asyncio locks are per event loop; the gateway runs one per process).
TOKENS = TokenCache()
