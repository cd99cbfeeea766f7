"""The gateway project package; importing it loads the Celery app (``celery -A gateway``)."""

from gateway.celery import app as celery_app

__all__ = ("celery_app",)
