"""Readings of OpenAI chat message content shared by the translators to backends that take
text and inline images only (Gemini, Bedrock Converse)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.adapters.base import UnsupportedOperation


def content_text(content: Any) -> str:
    """The text of a message's ``content``: the string itself, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def base64_image(part: Mapping[str, Any], backend: str) -> tuple[str, str]:
    """(media type, base64 data) of an ``image_url`` part; ``backend`` (for the message)
    accepts images only as base64 ``data:`` URLs, so anything else is refused."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise UnsupportedOperation(f"{backend} takes images as base64 data: URLs only")
    media_type, data = url[5:].split(";base64,", 1)
    return media_type, data
