"""The one exception configuration import raises for a bad file."""

from __future__ import annotations


class ConfigError(Exception):
    """The file is invalid; ``errors`` lists every problem, each naming the entry and field.

    Raised before anything is written, so callers can show all problems at once.
    """

    def __init__(self, errors: list[str]) -> None:
        # Model checks and file checks can both spot one problem; say it once.
        self.errors = list(dict.fromkeys(errors))
        super().__init__("\n".join(self.errors))
