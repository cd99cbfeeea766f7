"""``manage.py gateway_config import FILE [--dry-run]`` and ``... export [FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.fileformat import config_parse, config_render
from gateway.config_io.importer import config_import
from gateway.config_io.migrate import FORMATS, config_migrate


class Command(BaseCommand):
    help = (
        "Configuration as code. `import FILE [--dry-run]` upserts providers, keys, mappings, "
        "virtual keys and routing from YAML or JSON (validating everything first; nothing is "
        "written if anything is wrong). `export [FILE]` writes the configuration, secrets "
        "redacted, to FILE (JSON if it ends in .json, else YAML) or stdout."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # `import --from FORMAT FILE`: plain parse_args stops filling positionals at the first
        # option, so FILE after --from would be rejected; the intermixed parse takes both orders.
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["import", "export"])
        parser.add_argument("file", nargs="?", help="Path, or - for stdin/stdout.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="import: validate and report what would change, then roll back.",
        )
        parser.add_argument(
            "--from",
            dest="from_format",
            choices=sorted(FORMATS),
            help="import: FILE is another gateway's configuration; convert it to ours first "
            "(with --dry-run the converted file is printed).",
        )
        parser.add_argument(
            "--user",
            help="import: the admin user the History entries name (default: config-import).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str | None = options["file"]
        if options["action"] == "import":
            if not path:
                raise CommandError("import needs a FILE (or - for stdin)")
            actor = None
            if options["user"]:
                model = get_user_model()
                actor = model._default_manager.filter(
                    **{model.USERNAME_FIELD: options["user"]}
                ).first()
                if actor is None:
                    raise CommandError(f"no user named {options['user']!r}")
            self._import(
                path, dry_run=options["dry_run"], from_format=options["from_format"], actor=actor
            )
        else:
            if options["dry_run"] or options["from_format"] or options["user"]:
                raise CommandError("--dry-run, --from and --user apply to import only")
            self._export(path)

    def _import(
        self, path: str, *, dry_run: bool, from_format: str | None = None, actor: Any = None
    ) -> None:
        if path == "-":
            text, name = sys.stdin.read(), ""
        else:
            try:
                text, name = Path(path).read_text(encoding="utf-8"), path
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc}") from None
        hint = ""
        try:
            data = config_parse(text=text, filename=name)
            if from_format:
                # Converted first, then imported like a file of ours (same validation).
                migration = config_migrate(fmt=from_format, source=data)
                data = migration.data
                if dry_run:
                    self.stdout.write(f"# {path} converted from {from_format} (our format):")
                    self.stdout.write(config_render(data=data), ending="")
                if migration.render():
                    self.stdout.write(migration.render())
                if dry_run:
                    self.stdout.write("# import plan:")
                hint = " (paths are in the converted configuration; see --dry-run)"
            report = config_import(data=data, dry_run=dry_run, actor=actor)
        except ConfigError as exc:
            problems = "\n".join(f"  {e}" for e in exc.errors)
            raise CommandError(
                f"{path}: {len(exc.errors)} problem(s); nothing was written{hint}:\n{problems}"
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
