"""URLs served by Django. The hot ``/v1`` endpoints are served in front of Django by
``gateway.asgi`` (see README, "Performance"); Django serves admin and everything else."""

from django.contrib import admin
from django.urls import include, path

from gateway.monitoring import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", health.metrics, name="metrics"),
    # Reports and admin API: staff pages, REST API, OpenAPI schema.
    path("ops/", include("gateway.reports.urls")),
    path("api/", include("gateway.adminapi.urls")),
]
