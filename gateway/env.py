"""Typed readers of environment variables for ``gateway/settings.py``.

Each stops the process with the variable's name on a value it cannot read, rather than
falling back silently.
"""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

# Every variable FOO may instead be given as FOO_FILE, a path whose contents are the value
# (Docker/Kubernetes secrets); FOO_FILE wins when both are set. A value "$BAR" reads BAR.
env = environ.FileAwareEnv()

# Every variable read through these readers (and its _FILE twin), filled as they read: the
# settings expose it so ${VAR} in provider configuration never resolves one of them.
ENV_NAMES_READ: set[str] = set()

_true_words = frozenset({"true", "on", "ok", "y", "yes"})
_false_words = frozenset({"false", "off", "no", "n", ""})


def _read(name: str) -> str | None:
    """The raw value of ``name`` (or of the file ``name_FILE`` points at); None when unset."""
    ENV_NAMES_READ.update((name, f"{name}_FILE"))
    try:
        return env.str(name)
    except ImproperlyConfigured:
        return None


def _invalid(name: str, raw: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={raw!r} is not {expected}")


def envstr(name: str, default: str) -> str:
    """Read a string setting."""
    raw = _read(name)
    return default if raw is None else raw


def envbool(name: str, default: bool) -> bool:
    """Read a boolean: an integer (non-zero is true), true/yes/on/y/ok or false/no/off/n/empty.

    Anything else stops the process with the variable's name rather than reading as false.
    """
    raw = _read(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    try:
        return int(value) != 0
    except ValueError:
        pass
    if value in _true_words:
        return True
    if value in _false_words:
        return False
    raise _invalid(name, raw, "a boolean (1/0, true/false, yes/no, on/off)")


def envint(name: str, default: int) -> int:
    """Read an integer setting."""
    raw = _read(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _invalid(name, raw, "an integer") from None


def envretention(name: str, *, window: int) -> int:
    """Read a retention in days that must outlast ``window`` days of late rewrites (0: keep
    everything)."""
    days = envint(name, 0)
    if days < 0 or 0 < days <= window + 1:
        raise ImproperlyConfigured(
            f"{name}={days}: late usage events are folded into the daily rollups for {window} "
            f"days, so raw records must be kept longer: set more than {window + 1} days, or 0 to "
            "keep them all"
        )
    return days


def envfloat(name: str, default: float) -> float:
    """Read a float setting (a plain decimal number such as ``0.5`` or ``30``)."""
    raw = _read(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise _invalid(name, raw, "a number") from None


def envlist(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list; blanks around items and empty items are dropped."""
    raw = _read(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
