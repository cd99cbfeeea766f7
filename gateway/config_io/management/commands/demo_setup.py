"""``manage.py demo_setup``: the offline demo's configuration, key and admin user."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from gateway.config_io.demo import demo_setup


class Command(BaseCommand):
    help = (
        "Import gateway/config_io/fixtures/demo.yaml (mock providers), create the `demo` "
        "virtual key and the `admin` superuser (credentials kept in STATE_DIR), and print how "
        "to try it. Safe to rerun: it changes nothing and prints the same credentials."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Host shown in the banner.")
        parser.add_argument("--port", default="8000", help="Port shown in the banner.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_setup(state_dir=settings.STATE_DIR)
        base = f"http://{options['host']}:{options['port']}"
        report = result.report
        if report.has_changes:
            self.stdout.write(f"Demo configuration imported: {report.summary()}")
        # Reports: 30 days of sample usage for the demo key, so the cost report
        # and the health page are filled on first start (idempotent).
        call_command("demo_usage", stdout=self.stdout)
        password = result.admin_password or "(unchanged: this user existed before demo_setup)"
        body = json.dumps(
            {"model": "demo-chat", "messages": [{"role": "user", "content": "Hello, gateway!"}]}
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "LLM gateway demo (mock providers, no network needed)",
                    f"  Admin:        {base}/admin/",
                    f"  Cost report:  {base}/ops/costs/   Health: {base}/ops/health/",
                    f"  Username:     {result.admin_username}",
                    f"  Password:     {password}",
                    f"  Virtual key:  {result.key}",
                    f"  (kept in {settings.STATE_DIR}; rerun `manage.py demo_setup` to see them)",
                    "",
                    "Try it:",
                    f"  curl {base}/v1/chat/completions \\",
                    f'    -H "Authorization: Bearer {result.key}" \\',
                    '    -H "Content-Type: application/json" \\',
                    f"    -d '{body}'",
                    "",
                ]
            )
        )
