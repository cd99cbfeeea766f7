"""The Celery application: ``celery -A gateway worker`` and ``celery -A gateway beat``.

Configuration lives in ``gateway/settings.py`` (``CELERY_*``): Redis broker from ``REDIS_URL``,
late acknowledgement, one prefetched message per worker, eager execution without a broker.
The periodic schedule is kept in the database (django-celery-beat, editable in admin) and
created by ``manage.py setup_schedules``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live in each app's tasks.py (gateway.tasks, providers.tasks).
app.autodiscover_tasks()
