"""The split of the gateway app keeps every row: a database at the previous leaves migrates on.

Before the split, UsageRecord and BudgetAlert belonged to the ``gateway`` app and ApiToken to
``reports``. The test migrates the test database back to those leaves, writes rows through the
historical models, migrates forward and reads them through today's models. Runs on SQLite and
PostgreSQL (the migrations touch no table, only the state and content types).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps.registry import Apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from gateway.adminapi.models import ApiToken
from gateway.keys.models import VirtualKey
from gateway.usage.models import BudgetAlert, UsageRecord

# The leaves before the split; the new apps did not exist.
OLD_NODES = [("gateway", "0002_budgetalert"), ("reports", "0001_initial")]
OLD_TARGETS: list[tuple[str, str | None]] = [*OLD_NODES, ("usage", None), ("adminapi", None)]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def migrate_to(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    """Migrate the test database to ``targets`` (a fresh executor reads what is applied)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


@pytest.fixture
def old_apps() -> Iterator[Apps]:
    """The database at the old leaves and their historical models; the latest state after."""
    executor = migrate_to(OLD_TARGETS)
    try:
        yield executor.loader.project_state(OLD_NODES).apps
    finally:
        # The tests after this one expect the schema and state at the latest migrations.
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())
        ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_rows_and_permissions_survive_the_split(old_apps: Apps) -> None:
    user = old_apps.get_model("auth", "User").objects.create(username="ops", is_staff=True)
    vkey = old_apps.get_model("gateway", "VirtualKey").objects.create(
        name="app", key_hash="h" * 64, key_prefix="sk-gw-abcd", budget_amount=Decimal("10")
    )
    old_apps.get_model("gateway", "UsageRecord").objects.create(
        request_id="req-1",
        created_at=NOW,
        endpoint="chat",
        virtual_key_id=vkey.pk,
        model_alias="demo-chat",
        status_code=200,
        prompt_tokens=7,
        completion_tokens=3,
        attempts=[{"provider": 1}],
        cost=Decimal("0.0000123"),
    )
    old_apps.get_model("gateway", "BudgetAlert").objects.create(
        virtual_key_id=vkey.pk,
        period="monthly",
        period_start=NOW,
        kind="threshold",
        spend=Decimal("8.5"),
        budget_amount=Decimal("10"),
        threshold=Decimal("0.8"),
    )
    old_apps.get_model("reports", "ApiToken").objects.create(
        name="ci", user_id=user.pk, token_hash="t" * 64, token_prefix="gwat_abcd"
    )
    # A group allowed to view usage under the old app label keeps that right after the move.
    old_type = ContentType.objects.get(app_label="gateway", model="usagerecord")
    group = Group.objects.create(name="auditors")
    view_usage = Permission.objects.get(content_type=old_type, codename="view_usagerecord")
    group.permissions.add(view_usage)

    migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())

    key = VirtualKey.objects.get(name="app")
    assert (key.pk, key.key_prefix, key.budget_amount) == (vkey.pk, "sk-gw-abcd", Decimal("10"))
    record = UsageRecord.objects.get(request_id="req-1")
    assert record.virtual_key == key
    assert (record.prompt_tokens, record.completion_tokens) == (7, 3)
    assert record.attempts == [{"provider": 1}]
    assert record.cost == Decimal("0.0000123")
    alert = BudgetAlert.objects.get()
    assert (alert.virtual_key, alert.kind, alert.spend) == (key, "threshold", Decimal("8.5"))
    assert list(key.budget_alerts.all()) == [alert]
    token = ApiToken.objects.get()
    assert (token.name, token.user.username, token.token_prefix) == ("ci", "ops", "gwat_abcd")
    new_type = ContentType.objects.get_for_model(UsageRecord)
    assert new_type.pk == old_type.pk
    assert list(group.permissions.values_list("content_type__app_label", "codename")) == [
        ("usage", "view_usagerecord")
    ]
    assert not ContentType.objects.filter(app_label="gateway", model="usagerecord").exists()
    assert ContentType.objects.get_for_model(ApiToken).app_label == "adminapi"
