"""Health views, Prometheus metrics and the ``setup_schedules`` command (no models)."""

from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "gateway.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from django.core import checks

        from gateway.monitoring.persistence import check_redis_aof

        checks.register(check_redis_aof, "redis")
