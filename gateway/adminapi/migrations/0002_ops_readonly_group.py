"""The "Gateway ops (read-only)" group: every view permission of the gateway's configuration,
usage and report models, nothing else. Add a staff user to it for a read-only role in the admin
and on /api/ (both apply Django's model permissions).

Permissions are normally created after migrations run; they are created here first so the
group is complete on a fresh database too.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Gateway ops (read-only)"
APPS = ("providers", "mappings", "gateway", "usage", "reports")


def create_group(apps: Any, schema_editor: Any) -> None:
    for label in APPS:
        config = apps.get_app_config(label)
        config.models_module = True  # create_permissions skips apps without models
        create_permissions(config, verbosity=0, apps=apps)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=APPS, codename__startswith="view_"
        )
    )


def delete_group(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("adminapi", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("providers", "0004_provider_custom_headers_encrypted"),
        ("mappings", "0004_capabilities_undeclared"),
        ("gateway", "0003_move_usage_to_usage_app"),
        ("usage", "0001_initial"),
        ("reports", "0002_move_apitoken_to_adminapi"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
