"""``${VAR}`` substitution for configuration values (API keys, base URLs, custom headers).

References are stored as written and resolved when the route table is built, so rotating a
secret in the environment needs a restart (or a config version bump), not a database edit.

Not every variable of the gateway's environment may be referenced: whoever can edit a provider
instance could otherwise point it at a host of their choice with ``api_key: "${SECRET_KEY}"``
and read the secret there. :func:`refusal` is the one policy, used by validation (admin, REST
API, import) and by :func:`substitute` (route-table build):

- never a variable the settings module reads (``settings.GATEWAY_SETTINGS_ENV_NAMES``, filled
  by its env helpers, so the list cannot drift from the settings) nor process internals
  (Django, Celery, Python, the dynamic loader, PostgreSQL client variables, ...);
- when ``settings.GATEWAY_ENV_ALLOW`` is set, only the names (``NAME``) and prefixes
  (``PREFIX_*``) it lists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from django.conf import settings

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Process internals a configuration value has no business reading: credentials of the
# services the gateway itself uses, and variables that steer the interpreter or the loader.
INTERNAL_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "HOSTNAME",
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "DATABASE_URL",
        "REDIS_URL",
        "GATEWAY_ENV_ALLOW",
    }
)
INTERNAL_PREFIXES = (
    "DJANGO_",
    "CELERY_",
    "PYTHON",
    "LD_",
    "PG",
    "REDIS_",
    "DATABASE_",
    "SSH_",
    "GPG_",
    "KUBERNETES_",
    "PROMETHEUS_",
    "UVICORN_",
    "GUNICORN_",
    "FORKED_BY_MULTIPROCESSING",
)


class EnvReferenceError(KeyError):
    """A ``${VAR}`` reference cannot be resolved; ``name`` names the variable."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class MissingEnvVar(EnvReferenceError):
    """A ``${VAR}`` reference names a variable that is not set."""

    def __str__(self) -> str:
        return f"environment variable {self.name} is not set"


class RefusedEnvVar(EnvReferenceError):
    """A ``${VAR}`` reference names a variable the gateway never hands out (see module doc)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason

    def __str__(self) -> str:
        return f"environment variable {self.name} may not be referenced: {self.reason}"


def _matches(name: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def refusal(name: str) -> str | None:
    """Why ``${name}`` may not be resolved, or None when it may."""
    own: Iterable[str] = getattr(settings, "GATEWAY_SETTINGS_ENV_NAMES", ())
    if name in own:
        return "it is a setting of the gateway itself"
    if name in INTERNAL_NAMES or name.startswith(INTERNAL_PREFIXES):
        return "it belongs to the gateway's own process environment"
    allow = [p.strip() for p in getattr(settings, "GATEWAY_ENV_ALLOW", None) or () if p.strip()]
    if allow and not _matches(name, allow):
        return "it is not in GATEWAY_ENV_ALLOW"
    return None


def reference_error(name: str, environ: Mapping[str, str]) -> EnvReferenceError | None:
    """The error a reference to ``name`` would raise with ``environ``, or None when it resolves."""
    reason = refusal(name)
    if reason is not None:
        return RefusedEnvVar(name, reason)
    if name not in environ:
        return MissingEnvVar(name)
    return None


def references(value: str) -> list[str]:
    """Names of the variables ``value`` refers to, in order."""
    return _REF.findall(value or "")


def has_reference(value: str | None) -> bool:
    """True when ``value`` contains at least one ``${VAR}``."""
    return bool(value) and _REF.search(value or "") is not None


def substitute(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``${VAR}`` in ``value``.

    Raises :class:`RefusedEnvVar` for a variable the policy refuses (:func:`refusal`), whether
    set or not, and :class:`MissingEnvVar` for an unset one.
    """
    source = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        error = reference_error(match.group(1), source)
        if error is not None:
            raise error
        return source[match.group(1)]

    return _REF.sub(repl, value)


def substitute_unchecked(value: str, environ: Mapping[str, str]) -> str:
    """Replace every ``${VAR}`` from ``environ`` without the policy (for a given, fake mapping,
    e.g. deciding whether a value is nothing but references)."""
    return _REF.sub(lambda m: environ.get(m.group(1), ""), value)
