"""Admin History (``LogEntry``) for writes made outside the admin: the admin API and imports.

The admin logs its own saves; a write through the REST API or a configuration import would
otherwise leave the object's History page silent. Every such write path calls
:func:`history_log` with the acting user; an import run from the command line has none and is
recorded under a dedicated inactive user, :data:`IMPORT_USERNAME`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.db import models

from providers.models import ProviderKeyCredential

Action = Literal["added", "changed", "deleted"]
FLAGS = {"added": ADDITION, "changed": CHANGE, "deleted": DELETION}
# The user that command-line imports are recorded under (cannot log in: no password, inactive).
IMPORT_USERNAME = "config-import"


def history_log(
    *,
    user: Any,
    obj: models.Model,
    action: Action,
    via: str,
    fields: Iterable[str] = (),
) -> LogEntry | None:
    """Record one write of ``obj`` by ``user`` in the admin's History.

    ``via`` says where it came from ("the admin API", "configuration import"); ``fields`` are
    the changed fields of a change. Nothing is recorded without an authenticated user (the
    History needs one) or for an unsaved object. Call it before a delete: the row must still
    have its primary key.
    """
    if obj.pk is None or user is None or not getattr(user, "is_authenticated", False):
        return None
    names = [str(f) for f in fields]
    message = f"{action.capitalize()}"
    flag = FLAGS[action]
    if isinstance(obj, ProviderKeyCredential):
        # Keys are edited inline on their instance: their History is the instance's, as the
        # admin's own inline edits are.
        message += f" key “{obj.key_name}”"
        obj, flag = obj.provider, CHANGE
    if action == "changed" and names:
        message += f" {', '.join(names)}"
    message += f" through {via}."
    [entry] = LogEntry.objects.log_actions(user.pk, [obj], flag, message)
    return entry


def history_import_user() -> Any:
    """The inactive user that command-line imports are recorded under (made on first use)."""
    model = get_user_model()
    user, created = model._default_manager.get_or_create(
        **{model.USERNAME_FIELD: IMPORT_USERNAME}, defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
