"""The Celery application: ``celery -A gateway worker`` and ``celery -A gateway beat``.

Configuration lives in ``gateway/settings.py`` (``CELERY_*``): Redis broker from ``REDIS_URL``,
late acknowledgement, one prefetched message per worker, eager execution without a broker.
The periodic schedule is kept in the database (django-celery-beat, editable in admin) and
created by ``manage.py setup_schedules``.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

logger = logging.getLogger(__name__)

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live in each app's tasks.py (gateway.usage.tasks, gateway.reports.tasks,
# providers.tasks).
app.autodiscover_tasks()


@beat_init.connect
def _ensure_schedules(sender: Any = None, **kwargs: Any) -> None:
    """However beat is started (make beat, docker compose, by hand), the schedule exists.

    Idempotent and keeps intervals an admin changed; the database scheduler picks the new
    entries up on its next sync.
    """
    from django.core.management import call_command

    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    for line in out.getvalue().splitlines():
        logger.info("schedules: %s", line)
