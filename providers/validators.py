"""Validation shared by the admin, the config importer and the REST API."""

from __future__ import annotations

import re
from typing import Any

import orjson
from django.core.exceptions import ValidationError

from providers.envsubst import has_reference

# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

# Headers the gateway owns: hop-by-hop headers (RFC 9110 7.6.1) and the ones httpx computes.
# Letting an admin set them would break framing or let one instance smuggle requests.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def validate_header_name(name: str) -> None:
    """Reject names that are not RFC 9110 tokens or that the gateway must own."""
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        raise ValidationError(f"{name!r} is not a valid HTTP header name", code="header_name")
    if name.lower() in FORBIDDEN_HEADERS:
        raise ValidationError(
            f"header {name!r} is managed by the gateway and cannot be set", code="header_reserved"
        )


# What reads show instead of a literal header value (providers.secrets masks with it).
HEADER_MASK = "••••"


def validate_header_value(name: str, value: Any) -> None:
    """Values are strings without CR, LF or NUL (header injection), and not a mask."""
    if not isinstance(value, str):
        raise ValidationError(f"header {name!r}: value must be a string", code="header_value")
    if value.startswith(HEADER_MASK):
        # A masked value sent back under a new name (or for a value that is gone) would be
        # stored as the literal mask.
        raise ValidationError(
            f"header {name!r}: a masked value matches no stored value of this header; "
            "type the value",
            code="header_masked",
        )
    if any(c in value for c in "\r\n\x00"):
        raise ValidationError(
            f"header {name!r}: value must not contain CR, LF or NUL", code="header_value"
        )


def validate_custom_headers(headers: Any) -> None:
    """A JSON object of header name -> string value, names unique case-insensitively."""
    if headers in (None, ""):
        return
    if not isinstance(headers, dict):
        raise ValidationError("custom headers must be a JSON object of name: value", code="type")
    seen: set[str] = set()
    for name, value in headers.items():
        validate_header_name(name)
        validate_header_value(name, value)
        if name.lower() in seen:
            raise ValidationError(f"header {name!r} is given twice", code="header_duplicate")
        seen.add(name.lower())


def validate_header_list(names: Any) -> None:
    """A JSON list of header names (the client headers an instance forwards upstream)."""
    if names in (None, ""):
        return
    if not isinstance(names, list):
        raise ValidationError("must be a JSON list of header names", code="type")
    for name in names:
        validate_header_name(name)
        if name.lower() in {"authorization", "x-api-key", "api-key", "cookie"}:
            raise ValidationError(
                f"{name!r} carries client credentials and is never forwarded", code="header_auth"
            )


SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")
_GCP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def service_account_problem(value: str | None) -> str | None:
    """Why ``value`` is not a usable service-account JSON (None when it is, or when it is a
    ``${VAR}`` reference, checked when it is resolved)."""
    if not value or has_reference(value):
        return None
    try:
        info = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "api_key must be a service-account JSON (it does not parse as JSON)"
    if not isinstance(info, dict):
        return "api_key must be a service-account JSON object"
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not isinstance(info.get(name), str)]
    if missing:
        return f"api_key's service-account JSON lacks {', '.join(missing)}"
    return None


def vertex_instance_problems(project: str, location: str) -> dict[str, str]:
    """Errors by field for a Vertex instance's project and location."""
    errors: dict[str, str] = {}
    if not project:
        errors["project"] = "vertex_ai instances need a project"
    elif not has_reference(project) and not _GCP_NAME.match(project):
        errors["project"] = "project must be a Google Cloud project id"
    if not location:
        errors["location"] = "vertex_ai instances need a location (a region or global)"
    elif not has_reference(location) and not _GCP_NAME.match(location):
        errors["location"] = "location must be a region such as europe-west4, or global"
    return errors
