"""Redaction of secrets from upstream text: the one function every path uses.

Upstreams echo what they were sent: an auth error may quote the key whole, cut (``sk-abc…``),
upper-cased, or a subscription-key header's value. Their messages reach clients, logs, the
health-check log and ``HealthCheck.error_message``, so each passes through :func:`redact`
first, and is truncated only after it (a cut could otherwise leave the start of a key
that no longer matches whole).

What counts as a secret of an instance (:func:`provider_secrets`): its keys' values and the
resolved values of its custom headers whose names carry credentials
(:func:`is_sensitive_header`). Matching is ASCII case-insensitive; a secret of 8 characters
or more is also found by any 8-character piece of it, a shorter one (4+) only whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.snapshot import ProviderSnapshot

MASK = "[redacted]"
#: Shortest piece of a secret that gives it away.
FRAGMENT = 8
#: Text longer than this is cut before redaction (redaction costs per character; no error
#: message is useful at this length). A secret cut at the edge is still caught by its pieces.
MAX_SCAN = 16 * 1024

_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Custom header names that usually carry credentials (``Authorization``, ``X-Api-Key``,
# ``Ocp-Apim-Subscription-Key``, ``X-Auth-Token``).
_SENSITIVE_HEADER_PARTS = ("auth", "key", "token", "secret", "password", "cookie", "signature")


def is_sensitive_header(name: str) -> bool:
    """True for header names like ``Authorization``, ``X-Api-Key`` or ``X-Auth-Token``."""
    lowered = name.lower()
    return any(part in lowered for part in _SENSITIVE_HEADER_PARTS)


def provider_secrets(provider: ProviderSnapshot) -> list[str]:
    """The secret values of ``provider``: key values and credential-carrying header values
    (resolved, so a ``${VAR}`` is matched by what it stands for)."""
    found = [key.api_key for key in provider.keys if key.api_key]
    for name, value in provider.custom_headers:
        if value and is_sensitive_header(name):
            found.append(value)
            # "Bearer <token>": the token alone is what an upstream would echo.
            scheme, _, rest = value.partition(" ")
            if rest and scheme.isalpha():
                found.append(rest.strip())
    return found


def redact(text: str, secrets: Iterable[str], *, limit: int | None = None) -> str:
    """``text`` with every secret (whole, any case, or any 8-character piece of it) and URL
    credentials replaced by ``[redacted]``; then cut to ``limit`` characters."""
    text = text[:MAX_SCAN]
    lowered = text.translate(_ASCII_LOWER)
    covered = bytearray(len(text))
    grams: set[str] = set()
    for secret in secrets:
        s = secret.strip().translate(_ASCII_LOWER)
        if len(s) >= FRAGMENT:
            grams.update(s[i : i + FRAGMENT] for i in range(len(s) - FRAGMENT + 1))
        elif len(s) >= 4:
            _mark_all(lowered, s, covered)
    if grams:
        for i in range(len(lowered) - FRAGMENT + 1):
            if lowered[i : i + FRAGMENT] in grams:
                covered[i : i + FRAGMENT] = b"\x01" * FRAGMENT
    if any(covered):
        text = _mask(text, covered)
    text = _URL_CREDENTIALS.sub(MASK + "@", text)
    return text if limit is None else text[:limit]


def redact_for(provider: ProviderSnapshot, text: str, *, limit: int | None = None) -> str:
    """:func:`redact` with ``provider``'s secrets."""
    return redact(text, provider_secrets(provider), limit=limit)


def _mark_all(lowered: str, secret: str, covered: bytearray) -> None:
    start = lowered.find(secret)
    while start != -1:
        covered[start : start + len(secret)] = b"\x01" * len(secret)
        start = lowered.find(secret, start + 1)


def _mask(text: str, covered: bytearray) -> str:
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if covered[i]:
            while i < n and covered[i]:
                i += 1
            out.append(MASK)
        else:
            j = i
            while j < n and not covered[j]:
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out)
