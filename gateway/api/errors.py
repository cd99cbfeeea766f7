"""One error type for the request path, rendered in the caller's format."""

from __future__ import annotations

from typing import Any

import orjson

# HTTP status -> OpenAI error type (what the official SDKs map to exception classes).
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}

# HTTP status -> Anthropic error type.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


class GatewayError(Exception):
    """An error to answer the client with. Never carries a secret or a stack trace."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # the wire field is called "type"
        code: str | None = None,
        param: str | None = None,
        provider_id: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _OPENAI_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        self.code = code
        self.param = param
        self.provider_id = provider_id
        self.headers = headers or {}

    def openai_body(self) -> bytes:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.provider_id is not None:
            error["provider_id"] = self.provider_id
        return orjson.dumps({"error": error})

    def anthropic_body(self) -> bytes:
        kind = _ANTHROPIC_TYPES.get(
            self.status, "api_error" if self.status >= 500 else "invalid_request_error"
        )
        error: dict[str, Any] = {"type": kind, "message": self.message}
        if self.provider_id is not None:
            error["provider_id"] = self.provider_id
        return orjson.dumps({"type": "error", "error": error})
