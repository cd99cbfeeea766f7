"""Domain errors -> HTTP: the status, the body in the caller's format, and the headers.

The one place that knows both :mod:`gateway.core.errors` and HTTP. OpenAI's shape is
``{"error": {"message", "type", "param", "code"}}``; Anthropic's is
``{"type": "error", "error": {"type", "message"}}``. The official SDKs of both map the status
and type to their exception classes, so both must be right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from gateway.core import errors

if TYPE_CHECKING:
    from gateway.proxy.context import RequestContext

OPENAI = "openai"
ANTHROPIC = "anthropic"

# The most specific class wins (looked up along the MRO).
_STATUS: dict[type[errors.GatewayError], int] = {
    errors.InvalidRequest: 400,
    errors.Unsupported: 400,
    errors.AuthenticationFailed: 401,
    errors.BudgetExceeded: 402,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.RequestTooLarge: 413,
    errors.RateLimited: 429,
    errors.InternalError: 500,
    errors.UpstreamUnreachable: 502,
    errors.BadUpstreamResponse: 502,
    errors.NoProviderAvailable: 503,
    errors.ServiceUnavailable: 503,
    errors.DeadlineExceeded: 504,
    errors.UpstreamTimeout: 504,
}

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


#: Longest part of a client's model name echoed back in an error.
_ECHO_MAX = 200


def model_not_found(requested: str, fmt: str) -> errors.NotFound:
    """The one answer for a model a key cannot use, whether it does not exist or belongs to
    another tenant: the same status, code and message, in the caller's format, so an answer
    never tells that an alias exists."""
    name = requested[:_ECHO_MAX]
    if fmt == ANTHROPIC:
        return errors.NotFound(f"model: {name}", param="model")
    return errors.NotFound(f"The model '{name}' does not exist.", param="model")


def status_of(error: errors.GatewayError) -> int:
    """The HTTP status for ``error``: an upstream's own status is relayed as is."""
    if isinstance(error, errors.UpstreamError):
        return error.status
    for cls in type(error).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


def openai_type(error: errors.GatewayError, status: int) -> str:
    return error.type or _OPENAI_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )


def openai_body(error: errors.GatewayError) -> bytes:
    status = status_of(error)
    body: dict[str, Any] = {
        "message": error.message,
        "type": openai_type(error, status),
        "param": error.param,
        "code": error.code,
    }
    if error.provider_id is not None:
        body["provider_id"] = error.provider_id
    return orjson.dumps({"error": body})


def anthropic_body(error: errors.GatewayError) -> bytes:
    status = status_of(error)
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body: dict[str, Any] = {"type": kind, "message": error.message}
    if error.provider_id is not None:
        body["provider_id"] = error.provider_id
    return orjson.dumps({"type": "error", "error": body})


def error_body(error: errors.GatewayError, fmt: str) -> bytes:
    return anthropic_body(error) if fmt == ANTHROPIC else openai_body(error)


#: Statuses whose answer will not change on a retry of the same request. The official SDKs
#: read ``x-should-retry`` before their own status rules, so saying so spares the client its
#: retries (and the gateway their load).
FINAL_STATUSES = frozenset({400, 401, 403, 404, 413})


def error_headers(error: errors.GatewayError, ctx: RequestContext | None) -> dict[str, str]:
    """Headers of an error answer: the request's id and attempt trail once it has one (the
    same as a success carries), ``x-should-retry: false`` for answers a retry cannot change,
    ``retry-after`` and ``allow`` where they apply."""
    headers: dict[str, str] = {}
    if ctx is not None:
        headers["x-request-id"] = ctx.request_id
        headers["x-gateway-attempts"] = str(len(ctx.attempts))
        headers["x-gateway-attempt-trail"] = ctx.attempt_trail()
    if status_of(error) in FINAL_STATUSES:
        headers["x-should-retry"] = "false"
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    if isinstance(error, errors.MethodNotAllowed):
        headers["allow"] = error.allowed
    return headers


def stream_error(error: errors.GatewayError, fmt: str) -> bytes:
    """A mid-stream error event: content already went out, so the status stays 200 and the
    error travels in the stream in the caller's format."""
    if fmt == ANTHROPIC:
        return b"event: error\ndata: " + anthropic_body(error) + b"\n\n"
    return b"data: " + openai_body(error) + b"\n\n"
