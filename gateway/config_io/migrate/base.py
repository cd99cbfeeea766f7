"""What every converter shares: the result type and small helpers for foreign shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Migration:
    """A foreign configuration converted to ours, plus what could not be carried over.

    ``data`` is a configuration in our file format (``gateway/config_io/schema.py``), ready for
    ``config_import``.
    ``dropped`` names every source field or entry left out and why; ``notes`` says where the
    converter had to choose (an inferred provider type, a merged limit), so nothing is
    changed or lost silently.
    """

    source: str
    data: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def drop(self, path: str, why: str) -> None:
        self.dropped.append(f"{path}: {why}")

    def drop_unknown(self, node: dict[str, Any], known: set[str], prefix: str) -> None:
        """List every key of ``node`` the converter does not carry over."""
        for key in node:
            if key not in known:
                self.drop(f"{prefix}{key}", "no equivalent here")

    def render(self) -> str:
        """``not carried over`` and ``notes`` as text (empty when there are none)."""
        lines: list[str] = []
        for title, rows in (("not carried over", self.dropped), ("notes", self.notes)):
            if rows:
                lines.append(f"{title} ({len(rows)}):")
                lines.extend(f"  - {row}" for row in rows)
        return "\n".join(lines)


_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def env_name(value: Any) -> str:
    """``VAR`` when ``value`` is exactly ``${VAR}``, else ""."""
    match = _ENV_REF.match(value) if isinstance(value, str) else None
    return match.group(1) if match else ""


def slug(text: str) -> str:
    """A provider-name-safe slug: lower case, ``-`` between words."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "provider"


def url_host(url: str) -> str:
    """The host of ``url`` (lower case), or "" for an env reference or a non-URL."""
    if not url or "${" in url:
        return ""
    return (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()


def infer_type(base_url: str) -> str:
    """Our provider type for an OpenAI-style ``base_url`` (by host; unknown -> compatible)."""
    host = url_host(base_url)
    port = urlsplit(base_url).port if host else None
    if host == "api.openai.com":
        return "openai"
    if host == "api.anthropic.com":
        return "anthropic"
    if host.endswith(".openai.azure.com"):
        return "azure_openai"
    if port == 11434 or "ollama" in host:
        return "ollama"
    return "openai_compatible"


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``60``, ``60.0``, ``"60"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
