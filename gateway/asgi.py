"""ASGI entry point: the lean /v1 front in front of Django (see gateway.api.asgi_app)."""

from __future__ import annotations

import os
from typing import cast

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

# Django must be set up before the API module imports models.
django_application = get_asgi_application()

from gateway.api.asgi_app import ASGIApp, GatewayApp  # noqa: E402

# Django's handler is typed with narrower scope/message types than ASGI's generic ones.
application = GatewayApp(cast(ASGIApp, django_application))
