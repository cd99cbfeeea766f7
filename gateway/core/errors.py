"""Domain errors: why a request could not be served, with no HTTP in them.

Routing, usage, keys and the proxy raise these; :mod:`gateway.proxy.render` is the one place
that turns them into a status code and a body in the caller's format (OpenAI or Anthropic).
A message never carries a secret or a stack trace: it is shown to the client as is.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error a client is told about.

    ``code`` is the machine-readable reason (``model_not_found``); ``param`` names the
    request field at fault; ``type`` is a wire error type to relay as is (an upstream's), else
    the renderer derives one; ``retry_after`` is seconds the client should wait, when known;
    ``provider_id`` names the instance whose answer this was.
    """

    default_code: ClassVar[str | None] = None
    default_type: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # the wire field is called "type"
        provider_id: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.type = type if type is not None else self.default_type
        self.provider_id = provider_id
        self.retry_after = retry_after


# --- the request is wrong -----------------------------------------------------------------


class InvalidRequest(GatewayError):
    """The request cannot be served as written (bad JSON, a missing or mistyped field)."""

    default_code = "invalid_request_error"


class Unsupported(GatewayError):
    """The request asks for something the chosen model or instance cannot do."""

    default_code = "unsupported_operation"


class RequestTooLarge(GatewayError):
    """The body is over the gateway's size limit."""

    default_code = "request_too_large"


class NotFound(GatewayError):
    """Unknown model alias or endpoint."""

    default_code = "model_not_found"


class MethodNotAllowed(GatewayError):
    """The endpoint exists but not for this method; ``allowed`` is the one it takes."""

    default_code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: str) -> None:
        super().__init__(message)
        self.allowed = allowed


# --- the caller may not ----------------------------------------------------------------------


class AuthenticationFailed(GatewayError):
    """No virtual key, an unknown one, or one that is disabled or expired."""

    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    """The virtual key may not use this model."""

    default_code = "model_not_allowed"


class BudgetExceeded(GatewayError):
    """The virtual key's budget for the period is spent."""

    default_code = "budget_exceeded"


class RateLimited(GatewayError):
    """A rate limit (the virtual key's, or every instance's) is reached; see ``retry_after``."""

    default_code = "rate_limit_exceeded"
    default_type = "rate_limit_error"


# --- no instance could serve it --------------------------------------------------------------


class NoProviderAvailable(GatewayError):
    """Every candidate instance was skipped (circuit open, limits spent) or none exists."""

    default_code = "no_available_provider"


class ServiceUnavailable(GatewayError):
    """The gateway itself cannot serve yet (its configuration could not be read); the client
    should retry after ``retry_after`` seconds."""

    default_code = "service_unavailable"


class DeadlineExceeded(GatewayError):
    """The request's deadline passed before an instance answered."""

    default_code = "deadline_exceeded"
    default_type = "upstream_error"


class UpstreamTimeout(GatewayError):
    """The last instance tried did not answer in time."""

    default_code = "timeout"
    default_type = "upstream_error"


class UpstreamUnreachable(GatewayError):
    """The last instance tried could not be connected to, or dropped the connection."""

    default_code = "connect_error"
    default_type = "upstream_error"


class BadUpstreamResponse(GatewayError):
    """An instance answered 2xx with something unreadable, or broke a stream."""

    default_code = "bad_upstream_response"


class UpstreamError(GatewayError):
    """An instance answered with an error; ``status`` is the status it answered with, relayed
    to the client (a 400 from the provider is the client's 400)."""

    def __init__(self, status: int, message: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.status = status


class InternalError(GatewayError):
    """A bug: the gateway failed; details are in its log, not in the answer."""

    default_code = "internal_error"
