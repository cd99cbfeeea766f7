"""/api/: admin REST API, report endpoints and the OpenAPI schema with its browsable UI."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from gateway.adminapi import views
from gateway.reports import api as reports_api

router = DefaultRouter()
router.register("providers", views.ProviderViewSet, basename="api-provider")
router.register("provider-keys", views.ProviderKeyViewSet, basename="api-provider-key")
router.register("mappings", views.MappingViewSet, basename="api-mapping")
router.register("prices", views.PriceViewSet, basename="api-price")
router.register("virtual-keys", views.VirtualKeyViewSet, basename="api-virtual-key")

urlpatterns = [
    path("reports/costs/", reports_api.CostReportView.as_view(), name="api-report-costs"),
    path("reports/health/", reports_api.HealthReportView.as_view(), name="api-report-health"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
    re_path(r"", views.UnknownPath.as_view()),  # last: a JSON 404, not Django's HTML one
]
