"""/ops/: staff pages (cost report, CSV export, provider health, request log, playground)."""

from __future__ import annotations

from django.urls import path

from gateway.reports import log_views, playground_views, views

urlpatterns = [
    path("costs/", views.costs, name="ops-costs"),
    path("costs.csv", views.costs_csv, name="ops-costs-csv"),
    path("health/", views.health, name="ops-health"),
    path("health/<int:provider_id>/check", views.health_check_now, name="ops-health-check"),
    path("requests/", log_views.requests_page, name="ops-requests"),
    path("requests/tail", log_views.requests_tail, name="ops-requests-tail"),
    path("requests.csv", log_views.requests_csv, name="ops-requests-csv"),
    path("requests/<int:record_id>/", log_views.request_detail, name="ops-request-detail"),
    path("playground/", playground_views.playground_page, name="ops-playground"),
    path("playground/run", playground_views.playground_run, name="ops-playground-run"),
    path(
        "playground/result/<str:request_id>",
        playground_views.playground_result,
        name="ops-playground-result",
    ),
]
