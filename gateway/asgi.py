"""ASGI entry point: the lean /v1 front in front of Django (see gateway.proxy.app)."""

from __future__ import annotations

import os
from typing import cast

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas for this process (one: Python allocates under the GIL, so
    threads gain nothing from their own), unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that allocates its own arena (up to 8 per core), and freed memory
    stays with its arena: with the database thread writing usage in process, a worker's RSS
    was 7 MB higher for it (``bench/run.py`` without Redis: 123 MB against 116 MB with one
    arena). The request path allocates on the loop thread, so few arenas cost it nothing.
    Called before the worker starts its threads; a no-op off glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_arena_max = -8  # from glibc's malloc.h
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):
        return False


limit_malloc_arenas()

# Django must be set up before the API module imports models.
django_application = get_asgi_application()

from gateway.proxy.app import ASGIApp, GatewayApp  # noqa: E402

# Django's handler is typed with narrower scope/message types than ASGI's generic ones.
application = GatewayApp(cast(ASGIApp, django_application))
