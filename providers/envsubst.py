"""``${VAR}`` substitution for configuration values (API keys, base URLs, custom headers).

References are stored as written and resolved when the route table is built, so rotating a
secret in the environment needs a restart (or a config version bump), not a database edit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingEnvVar(KeyError):
    """A ``${VAR}`` reference names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"environment variable {self.name} is not set"


def references(value: str) -> list[str]:
    """Names of the variables ``value`` refers to, in order."""
    return _REF.findall(value or "")


def has_reference(value: str | None) -> bool:
    """True when ``value`` contains at least one ``${VAR}``."""
    return bool(value) and _REF.search(value or "") is not None


def substitute(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``${VAR}`` in ``value``; raise :class:`MissingEnvVar` for an unset one."""
    source = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise MissingEnvVar(name)
        return source[name]

    return _REF.sub(repl, value)
