"""Which ``anthropic-beta`` flags a client may pass to an instance.

A beta flag changes what an upstream account does for the request: some only change the wire
format (interleaved thinking, fine-grained tool streaming), others cost more (the 1M-token
context), store data on the account (Files API) or let the upstream reach other hosts (MCP
connector, web fetch). On a shared account a client must not switch those on by itself, so an
instance passes a client's flag only when its ``anthropic_beta_allow`` admits it:

* unset (``None``): :data:`DEFAULT_ALLOW`, the format and tool betas Claude Code and the
  Anthropic SDKs send, so they work against an ``anthropic`` instance unchanged;
* a list of names: those only (``[]``: none); ``"*"`` in it: every flag.

An entry matches a flag by name with or without its date: ``interleaved-thinking`` admits
``interleaved-thinking-2025-05-14`` (and a later date).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

HEADER = "anthropic-beta"
ANY = "*"

#: Betas that change only the request and response format, or enable features priced like
#: any other tokens: what Claude Code sends by default. Not here: ``context-1m`` (long-context
#: pricing), ``files-api``, ``mcp-client``, ``code-execution``, ``web-fetch``, ``skills``,
#: ``computer-use``, ``oauth``: an operator opts an instance into those.
DEFAULT_ALLOW: tuple[str, ...] = (
    "claude-code",
    "interleaved-thinking",
    "fine-grained-tool-streaming",
    "token-efficient-tools",
    "context-management",
    "prompt-caching",
    "extended-cache-ttl",
    "mid-conversation-system",
    "tools",
    "output-128k",
    "effort",
    "structured-outputs",
    "advanced-tool-use",
    "tool-examples",
)


def beta_allowed(flag: str, allow: Iterable[str]) -> bool:
    """Whether ``flag`` is admitted by the entries ``allow``."""
    flag = flag.strip().lower()
    for entry in allow:
        entry = entry.strip().lower()
        if entry == ANY or flag == entry or flag.startswith(entry + "-20"):
            return True
    return False


def filter_betas(value: str, allow: tuple[str, ...] | None) -> str:
    """The comma list ``value`` of a client's ``anthropic-beta`` header, without the flags
    ``allow`` (an instance's setting; None: :data:`DEFAULT_ALLOW`) does not admit."""
    entries = DEFAULT_ALLOW if allow is None else allow
    kept = [f.strip() for f in value.split(",") if f.strip() and beta_allowed(f, entries)]
    return ",".join(kept)


def validate_beta_allow(value: Any) -> None:
    """``None`` (the default list) or a JSON list of beta names or ``"*"``."""
    if value is None:
        return
    if not isinstance(value, list):
        raise ValidationError('must be a JSON list of beta names or ["*"]', code="type")
    for entry in value:
        ok = isinstance(entry, str) and (
            entry == ANY or (0 < len(entry) <= 100 and all(c.isalnum() or c == "-" for c in entry))
        )
        if not ok:
            raise ValidationError(
                f"{entry!r} is not a beta name (letters, digits, dashes) or *", code="beta"
            )
