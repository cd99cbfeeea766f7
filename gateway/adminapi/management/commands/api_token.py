"""``manage.py api_token create --user NAME [--name LABEL]``: a staff API token (shown once)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.adminapi.models import ApiToken
from gateway.adminapi.services import api_token_create


class Command(BaseCommand):
    help = "Create (or list, or revoke) admin API tokens. Only staff users' tokens are accepted."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="cli")
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix", help="The token's first characters (gwat_XXXX).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
            if not user.is_staff:
                raise CommandError(f"{user} is not staff: its token would be refused")
            _, plaintext = api_token_create(user=user, name=options["name"])
            self.stdout.write(plaintext)
        elif options["action"] == "list":
            for t in ApiToken.objects.select_related("user"):
                state = "active" if t.is_active and not t.is_expired else "inactive"
                self.stdout.write(f"{t.token_prefix}…  {t.name}  {t.user}  {state}")
        else:
            n = ApiToken.objects.filter(token_prefix=options["prefix"]).update(is_active=False)
            if not n:
                raise CommandError("no token with that prefix")
            self.stdout.write(f"revoked {n} token(s)")
