"""OpenAPI schema additions: the error answers every admin API operation can give.

drf-spectacular documents only the success status; clients (and the schema fuzz suite) need
the errors too, in the one shape :mod:`gateway.adminapi.errors` renders them.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Validation errors by field name (400 only).",
                },
            },
        }
    },
}

#: Status -> description, for every operation (an operation may not give each of them).
ERRORS = {
    "400": "Invalid parameters or body; `fields` names the offending fields.",
    "401": "Missing or invalid credentials (staff session or `Bearer gwat_...` token).",
    "403": "Authenticated, but not allowed.",
    "404": "No such object.",
    "405": "Method not allowed.",
    "406": "The `Accept` header asks for a format the API does not produce.",
    "409": "The object is in use (recorded usage refers to it).",
    "415": "The request body's content type is not accepted.",
}


def error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document :data:`ERRORS` on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(status, {"description": description, "content": content})
    return result
