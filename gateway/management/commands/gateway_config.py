"""``manage.py gateway_config import FILE [--dry-run]`` and ``... export [FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.config_io import (
    ConfigError,
    config_export,
    config_import,
    config_parse,
    config_render,
)


class Command(BaseCommand):
    help = (
        "Configuration as code. `import FILE [--dry-run]` upserts providers, keys, mappings, "
        "virtual keys and routing from YAML or JSON (validating everything first; nothing is "
        "written if anything is wrong). `export [FILE]` writes the configuration, secrets "
        "redacted, to FILE (JSON if it ends in .json, else YAML) or stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["import", "export"])
        parser.add_argument("file", nargs="?", help="Path, or - for stdin/stdout.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="import: validate and report what would change, then roll back.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str | None = options["file"]
        if options["action"] == "import":
            if not path:
                raise CommandError("import needs a FILE (or - for stdin)")
            self._import(path, dry_run=options["dry_run"])
        else:
            if options["dry_run"]:
                raise CommandError("--dry-run applies to import only")
            self._export(path)

    def _import(self, path: str, *, dry_run: bool) -> None:
        if path == "-":
            text, name = sys.stdin.read(), ""
        else:
            try:
                text, name = Path(path).read_text(encoding="utf-8"), path
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc}") from None
        try:
            report = config_import(data=config_parse(text=text, filename=name), dry_run=dry_run)
        except ConfigError as exc:
            problems = "\n".join(f"  {e}" for e in exc.errors)
            raise CommandError(
                f"{path}: {len(exc.errors)} problem(s); nothing was written:\n{problems}"
            ) from None
        self.stdout.write(report.render())

    def _export(self, path: str | None) -> None:
        fmt = "json" if path and path.lower().endswith(".json") else "yaml"
        text = config_render(data=config_export(), fmt=fmt)
        if not path or path == "-":
            self.stdout.write(text, ending="")
            return
        Path(path).write_text(text, encoding="utf-8")
        self.stderr.write(f"exported the configuration to {path} (secrets redacted)")
