"""Admin History entries for the admin API's writes (the admin logs its own)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models, transaction
from rest_framework.serializers import BaseSerializer

from providers.history import Action, history_log

VIA = "the admin API"
V = TypeVar("V", bound=type)


def api_history(view: Any, obj: models.Model, action: Action, fields: Any = ()) -> None:
    """Log one write of ``obj`` by the view's requesting user (token or session)."""
    history_log(user=view.request.user, obj=obj, action=action, via=VIA, fields=fields)


def with_history(cls: V) -> V:
    """Wrap a viewset's ``perform_create/update/destroy`` (its own or inherited) with logging.

    A class decorator rather than a mixin: viewsets define their own ``perform_*`` (writes go
    through services), which a mixin's would not wrap. A delete is logged in the same
    transaction, before the row goes, so a refused delete logs nothing.
    """
    view: Any = cls
    create: Callable[..., None] = view.perform_create
    update: Callable[..., None] = view.perform_update
    destroy: Callable[..., None] = view.perform_destroy

    @functools.wraps(create)
    def perform_create(self: Any, serializer: BaseSerializer[Any]) -> None:
        create(self, serializer)
        if isinstance(serializer.instance, models.Model):
            api_history(self, serializer.instance, "added")

    @functools.wraps(update)
    def perform_update(self: Any, serializer: BaseSerializer[Any]) -> None:
        update(self, serializer)
        if isinstance(serializer.instance, models.Model):
            # Field names only: a value (an API key) never goes into the History.
            api_history(self, serializer.instance, "changed", list(serializer.validated_data))

    @functools.wraps(destroy)
    def perform_destroy(self: Any, instance: models.Model) -> None:
        with transaction.atomic():
            api_history(self, instance, "deleted")
            destroy(self, instance)

    view.perform_create = perform_create
    view.perform_update = perform_update
    view.perform_destroy = perform_destroy
    return cls
