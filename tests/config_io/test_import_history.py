"""A configuration import leaves admin History entries: one per row added or changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from gateway.config_io.importer import config_import
from providers.history import IMPORT_USERNAME
from providers.models import Provider
from tests.config_io.seed import write_config

pytestmark = pytest.mark.django_db


def test_import_logs_each_written_row_and_a_reimport_logs_nothing(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    report = config_import(data=seed)
    created = report.counts()["created"]
    entries = LogEntry.objects.all()
    assert entries.count() == created  # tiers are left out: they have no admin History
    # Rows are added; keys are logged on their instance (as the admin's inline edits are).
    assert {e.action_flag for e in entries} == {ADDITION, CHANGE}
    assert {e.user.username for e in entries} == {IMPORT_USERNAME}
    importer = get_user_model().objects.get(username=IMPORT_USERNAME)
    assert not importer.is_active and not importer.has_usable_password()
    prod = Provider.objects.get(name="openai-production")
    entry = LogEntry.objects.get(
        object_id=str(prod.pk), content_type__model="provider", action_flag=ADDITION
    )
    assert entry.change_message == "Added through configuration import."
    key_entries = LogEntry.objects.filter(object_id=str(prod.pk), action_flag=CHANGE)
    assert sorted(e.change_message for e in key_entries) == [
        "Added key “prod-1” through configuration import.",
        "Added key “prod-2” through configuration import.",
    ]

    config_import(data=seed)
    assert LogEntry.objects.count() == created

    seed["providers"][0]["timeout"] = 30
    config_import(data=seed)
    latest = LogEntry.objects.latest("action_time")
    assert (latest.action_flag, latest.object_repr) == (CHANGE, str(prod))
    assert latest.change_message == "Changed timeout through configuration import."


def test_dry_run_logs_nothing_and_user_option_names_the_actor(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    path = write_config(tmp_path / "gateway.yaml", seed)
    call_command("gateway_config", "import", str(path), "--dry-run")
    assert not LogEntry.objects.exists()

    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("gateway_config", "import", str(path), "--user", "nobody")
    assert not Provider.objects.exists()

    admin = get_user_model().objects.create_superuser("alice", password="x")
    call_command("gateway_config", "import", str(path), "--user", "alice")
    assert set(LogEntry.objects.values_list("user", flat=True)) == {admin.pk}
