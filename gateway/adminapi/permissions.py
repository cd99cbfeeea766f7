"""Who may do what on /api/: Django's model permissions, exactly as the admin applies them.

A staff user (session or ``Bearer gwat_...`` token alike: the token only says who the caller
is) needs the model's ``view`` permission to read, ``add`` to create, ``change`` to update and
``delete`` to delete, per model, so a staff user without model permissions gets 403 everywhere
and a group holding only ``view`` permissions is a read-only role. Views without a model
(reports) name the permissions they need in ``required_permissions``; a view with neither is
for superusers only, so a new endpoint is closed until it says otherwise.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GatewayModelPermissions(DjangoModelPermissions):
    """``DjangoModelPermissions`` that also requires ``view`` for reads and ``is_staff``.

    A view maps extra actions to a permission with ``action_permissions`` (e.g.
    ``{"rotate": "change"}``): an action that changes an object is not an ``add`` because it
    arrives as a POST.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        if getattr(view, "_ignore_model_permissions", False):
            # DRF's API root, a list of links: for staff who may use at least one of them.
            return bool(user.is_superuser or user.get_all_permissions())
        required = getattr(view, "required_permissions", None)
        if required is not None:
            return bool(user.has_perms(required))
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            return bool(user.is_superuser)
        queryset = self._queryset(view)
        action = getattr(view, "action", None)
        verb = (getattr(view, "action_permissions", None) or {}).get(action)
        if verb is not None:
            meta = queryset.model._meta
            return bool(user.has_perm(f"{meta.app_label}.{verb}_{meta.model_name}"))
        perms = self.get_required_permissions(request.method or "GET", queryset.model)
        return bool(user.has_perms(perms))
