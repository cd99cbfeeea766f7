"""/ops/: staff pages (cost report, CSV export, provider health)."""

from __future__ import annotations

from django.urls import path

from gateway.reports import views

urlpatterns = [
    path("costs/", views.costs, name="ops-costs"),
    path("costs.csv", views.costs_csv, name="ops-costs-csv"),
    path("health/", views.health, name="ops-health"),
    path("health/<int:provider_id>/check", views.health_check_now, name="ops-health-check"),
]
